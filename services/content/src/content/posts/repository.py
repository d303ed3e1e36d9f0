"""Posts and campaigns in the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Row, and_, func, insert, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from ..models import campaigns, comments, posts

ACTIVE_STATUSES = ("scheduled", "published")


class PostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self._session.execute(insert(posts).values(**values))

    async def get(self, merchant_id: str, post_id: UUID, *, for_update: bool = False) -> Row[Any] | None:
        query = select(posts).where(posts.c.merchant_id == merchant_id, posts.c.id == post_id)
        if for_update:
            query = query.with_for_update()
        return (await self._session.execute(query)).first()

    async def update(self, merchant_id: str, post_id: UUID, values: dict[str, Any]) -> None:
        await self._session.execute(
            update(posts)
            .where(posts.c.merchant_id == merchant_id, posts.c.id == post_id)
            .values(**values, updated_at=func.now())
        )

    async def list_posts(
        self, merchant_id: str, *, status: str | None, campaign_id: UUID | None, limit: int
    ) -> Sequence[Row[Any]]:
        query = select(posts).where(posts.c.merchant_id == merchant_id)
        if status is not None:
            query = query.where(posts.c.status == status)
        if campaign_id is not None:
            query = query.where(posts.c.campaign_id == campaign_id)
        query = query.order_by(posts.c.publish_at.desc().nulls_first(), posts.c.created_at.desc()).limit(
            limit
        )
        return (await self._session.execute(query)).all()

    async def feed(
        self, merchant_id: str, group_ids: set[UUID], segment_ids: set[UUID], limit: int
    ) -> Sequence[Row[Any]]:
        audience = or_(
            posts.c.group_ids.overlap(literal(sorted(group_ids), ARRAY(Uuid))),
            posts.c.segment_ids.overlap(literal(sorted(segment_ids), ARRAY(Uuid))),
        )
        query = (
            select(posts)
            .where(posts.c.merchant_id == merchant_id, posts.c.status == "published", audience)
            .order_by(posts.c.published_at.desc())
            .limit(limit)
        )
        return (await self._session.execute(query)).all()

    async def taken_slots(
        self, merchant_id: str, group_ids: Sequence[UUID], since: datetime, *, excluding: UUID | None
    ) -> dict[UUID, list[datetime]]:
        """When each group's other live posts go (or went) out, from `since` on."""
        query = select(posts.c.id, posts.c.group_ids, posts.c.publish_at).where(
            posts.c.merchant_id == merchant_id,
            posts.c.status.in_(ACTIVE_STATUSES),
            posts.c.publish_at >= since,
            posts.c.group_ids.overlap(literal(list(group_ids), ARRAY(Uuid))),
        )
        if excluding is not None:
            query = query.where(posts.c.id != excluding)
        taken: dict[UUID, list[datetime]] = {g: [] for g in group_ids}
        for row in await self._session.execute(query):
            for group_id in row.group_ids:
                if group_id in taken:
                    taken[group_id].append(row.publish_at)
        return taken

    async def hourly_activity(
        self, merchant_id: str, group_ids: Sequence[UUID], timezone: str, now: datetime
    ) -> dict[int, int]:
        """Comments per local hour of day in the groups over the last 28 days."""
        hour = func.extract("hour", func.timezone(timezone, comments.c.created_at))
        rows = await self._session.execute(
            select(hour.label("hour"), func.count().label("n"))
            .where(
                comments.c.merchant_id == merchant_id,
                comments.c.group_id.in_(list(group_ids)),
                comments.c.created_at >= now - timedelta(days=28),
                comments.c.created_at <= now,
            )
            .group_by(hour)
        )
        return {int(row.hour): int(row.n) for row in rows}

    async def add_campaign(self, values: dict[str, Any]) -> None:
        await self._session.execute(insert(campaigns).values(**values))

    async def get_campaign(
        self, merchant_id: str, campaign_id: UUID, *, for_update: bool = False
    ) -> Row[Any] | None:
        query = select(campaigns).where(campaigns.c.merchant_id == merchant_id, campaigns.c.id == campaign_id)
        if for_update:
            query = query.with_for_update()
        return (await self._session.execute(query)).first()

    async def cancel_campaign(self, merchant_id: str, campaign_id: UUID) -> None:
        await self._session.execute(
            update(campaigns)
            .where(campaigns.c.merchant_id == merchant_id, campaigns.c.id == campaign_id)
            .values(status="cancelled")
        )
        await self._session.execute(
            update(posts)
            .where(
                and_(
                    posts.c.merchant_id == merchant_id,
                    posts.c.campaign_id == campaign_id,
                    posts.c.status.in_(("draft", "scheduled")),
                )
            )
            .values(status="cancelled", updated_at=func.now())
        )

    async def now(self) -> datetime:
        found: datetime = await self._session.scalar(text("SELECT now()"))
        return found
