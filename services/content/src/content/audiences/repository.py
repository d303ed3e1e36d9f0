"""Who is where: groups and their push rules, group and segment members, tiers, the merchant's zone.

Membership, segments and rewards own these facts; content keeps projections fed by their events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from uuid import UUID

from sqlalchemy import and_, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.scheduling import DEFAULT_TIMEZONE, GroupRules
from ..models import customer_tiers, group_members, groups, merchant_settings, segment_members


@dataclass(frozen=True)
class GroupSettings:
    group_id: UUID
    max_posts_per_day: int | None
    quiet_start: time | None
    quiet_end: time | None

    @property
    def rules(self) -> GroupRules:
        return GroupRules(self.max_posts_per_day, self.quiet_start, self.quiet_end)


class AudienceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def timezone(self, merchant_id: str) -> str:
        found = await self._session.scalar(
            select(merchant_settings.c.timezone).where(merchant_settings.c.merchant_id == merchant_id)
        )
        return found or DEFAULT_TIMEZONE

    async def set_timezone(self, merchant_id: str, timezone: str) -> None:
        statement = insert(merchant_settings).values(merchant_id=merchant_id, timezone=timezone)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[merchant_settings.c.merchant_id],
                set_={"timezone": timezone, "updated_at": func.now()},
            )
        )

    async def save_group_settings(self, merchant_id: str, settings: GroupSettings) -> None:
        values = {
            "max_posts_per_day": settings.max_posts_per_day,
            "quiet_start": settings.quiet_start,
            "quiet_end": settings.quiet_end,
        }
        statement = insert(groups).values(merchant_id=merchant_id, group_id=settings.group_id, **values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[groups.c.merchant_id, groups.c.group_id],
                set_={**values, "updated_at": func.now()},
            )
        )

    async def lock_groups(self, merchant_id: str, group_ids: Sequence[UUID]) -> dict[UUID, GroupSettings]:
        """The groups' settings, row-locked in id order so concurrent schedulers of one group queue up."""
        rows = await self._session.execute(
            select(groups)
            .where(groups.c.merchant_id == merchant_id, groups.c.group_id.in_(list(group_ids)))
            .order_by(groups.c.group_id)
            .with_for_update()
        )
        return {
            row.group_id: GroupSettings(row.group_id, row.max_posts_per_day, row.quiet_start, row.quiet_end)
            for row in rows
        }

    async def group_settings(self, merchant_id: str, group_id: UUID) -> GroupSettings | None:
        row = (
            await self._session.execute(
                select(groups).where(groups.c.merchant_id == merchant_id, groups.c.group_id == group_id)
            )
        ).first()
        if row is None:
            return None
        return GroupSettings(row.group_id, row.max_posts_per_day, row.quiet_start, row.quiet_end)

    async def all_group_ids(self, merchant_id: str) -> list[UUID]:
        result = await self._session.scalars(
            select(groups.c.group_id).where(groups.c.merchant_id == merchant_id).order_by(groups.c.group_id)
        )
        return list(result)

    async def add_members(self, rows: Sequence[tuple[str, UUID, str]]) -> None:
        if rows:
            await self.ensure_groups_many({(m, g) for m, g, _ in rows})
            values = [{"merchant_id": m, "group_id": g, "customer_id": c} for m, g, c in rows]
            await self._session.execute(insert(group_members).values(values).on_conflict_do_nothing())

    async def ensure_groups_many(self, pairs: set[tuple[str, UUID]]) -> None:
        values = [{"merchant_id": m, "group_id": g} for m, g in sorted(pairs, key=str)]
        await self._session.execute(insert(groups).values(values).on_conflict_do_nothing())

    async def remove_members(self, rows: Sequence[tuple[str, UUID, str]]) -> None:
        if rows:
            key = tuple_(group_members.c.merchant_id, group_members.c.group_id, group_members.c.customer_id)
            await self._session.execute(delete(group_members).where(key.in_(list(rows))))

    async def remove_from_all_groups(self, merchant_id: str, customer_id: str) -> None:
        await self._session.execute(
            delete(group_members).where(
                group_members.c.merchant_id == merchant_id, group_members.c.customer_id == customer_id
            )
        )

    async def member_groups(self, merchant_id: str, customer_id: str) -> set[UUID]:
        result = await self._session.scalars(
            select(group_members.c.group_id).where(
                group_members.c.merchant_id == merchant_id, group_members.c.customer_id == customer_id
            )
        )
        return set(result)

    async def set_segment_membership(
        self, merchant_id: str, segment_id: UUID, customer_id: str, inside: bool
    ) -> None:
        if inside:
            await self._session.execute(
                insert(segment_members)
                .values(merchant_id=merchant_id, segment_id=segment_id, customer_id=customer_id)
                .on_conflict_do_nothing()
            )
        else:
            await self._session.execute(
                delete(segment_members).where(
                    segment_members.c.merchant_id == merchant_id,
                    segment_members.c.segment_id == segment_id,
                    segment_members.c.customer_id == customer_id,
                )
            )

    async def member_segments(self, merchant_id: str, customer_id: str) -> set[UUID]:
        result = await self._session.scalars(
            select(segment_members.c.segment_id).where(
                segment_members.c.merchant_id == merchant_id, segment_members.c.customer_id == customer_id
            )
        )
        return set(result)

    async def record_tier(
        self, merchant_id: str, customer_id: str, tier: str | None, rank: int, changed_at: datetime
    ) -> None:
        """Keep the newest tier: an older change arriving late does not overwrite a newer one."""
        statement = insert(customer_tiers).values(
            merchant_id=merchant_id, customer_id=customer_id, tier=tier, rank=rank, changed_at=changed_at
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[customer_tiers.c.merchant_id, customer_tiers.c.customer_id],
                set_={"tier": tier, "rank": rank, "changed_at": changed_at},
                where=and_(customer_tiers.c.changed_at <= statement.excluded.changed_at),
            )
        )

    async def tier_rank(self, merchant_id: str, customer_id: str) -> int:
        found = await self._session.scalar(
            select(customer_tiers.c.rank).where(
                customer_tiers.c.merchant_id == merchant_id, customer_tiers.c.customer_id == customer_id
            )
        )
        return found or 0
