"""Memberships and seats. Seat changes run under the group row lock; the CHECK on `subgroups` backs it up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import insert, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from meadow_contracts import new_event_id

from ..domain.join_rules import CustomerStanding
from ..groups.repository import GroupRecord, SubgroupRecord, group_from_row, subgroup_from_row
from ..models import memberships, subgroups


@dataclass(frozen=True)
class MembershipRecord:
    id: UUID
    group_id: UUID
    subgroup_id: UUID
    subgroup_number: int
    customer_id: str
    route: str
    invite_id: UUID | None
    joined_at: datetime


@dataclass(frozen=True)
class JoinContext:
    """Everything a join decides on before it needs the group's seat lock, read in one round trip."""

    group: GroupRecord
    existing: MembershipRecord | None
    blacklisted: bool
    standing: CustomerStanding


def _membership(row: RowMapping) -> MembershipRecord:
    return MembershipRecord(
        id=row["id"],
        group_id=row["group_id"],
        subgroup_id=row["subgroup_id"],
        subgroup_number=row["subgroup_number"],
        customer_id=row["customer_id"],
        route=row["route"],
        invite_id=row["invite_id"],
        joined_at=row["joined_at"],
    )


# pg_advisory_xact_lock keyed by merchant and customer: every change to one customer's memberships (join,
# leave, block, invitation) queues here, so a block can never interleave with a join of the same customer.
LOCK_CUSTOMER = text("SELECT pg_advisory_xact_lock(hashtextextended(:merchant || ':' || :customer, 7))")

JOIN_CONTEXT = text(
    """
    SELECT g.*,
           m.id AS m_id, m.subgroup_id AS m_subgroup_id, s.number AS m_subgroup_number, m.route AS m_route,
           m.invite_id AS m_invite_id, m.joined_at AS m_joined_at,
           EXISTS (SELECT 1 FROM blacklist b WHERE b.merchant_id = :merchant AND b.customer_id = :customer)
               AS blacklisted,
           ARRAY(SELECT cs.segment_key FROM customer_segments cs
                 WHERE cs.merchant_id = :merchant AND cs.customer_id = :customer AND cs.is_member)
               AS segments,
           COALESCE((SELECT ct.tier_rank FROM customer_tiers ct
                     WHERE ct.merchant_id = :merchant AND ct.customer_id = :customer), 0) AS tier_rank
    FROM groups g
    LEFT JOIN memberships m ON m.merchant_id = g.merchant_id AND m.group_id = g.id
         AND m.customer_id = :customer AND m.ended_at IS NULL
    LEFT JOIN subgroups s ON s.id = m.subgroup_id
    WHERE g.merchant_id = :merchant AND g.id = :group
    """
)

# Two statements on purpose: under READ COMMITTED a statement that waited for a row lock still reads
# other tables from the snapshot taken before the wait, so the seats must be read after the lock is held.
# NO KEY UPDATE, not UPDATE: inserting a membership or sub-group takes KEY SHARE on the group row (foreign
# key), and a fast-path join holding a sub-group row must not queue behind us while we wait for that row.
LOCK_GROUP = text("SELECT id FROM groups WHERE merchant_id = :merchant AND id = :group FOR NO KEY UPDATE")
SEATS = text("SELECT * FROM subgroups WHERE group_id = :group ORDER BY number")

# The fast path of a join: one statement takes a seat in the lowest-numbered sub-group with room and
# records the membership. The seat UPDATE re-checks `member_count < capacity` on the row's latest version
# after any lock wait, so it can come back empty (the caller then takes the slow path) but never overfills.
TAKE_FIRST_FREE_SEAT = text(
    """
    WITH seat AS (
        UPDATE subgroups SET member_count = member_count + 1
        WHERE id = (SELECT id FROM subgroups WHERE group_id = :group AND member_count < capacity
                    ORDER BY number LIMIT 1)
          AND member_count < capacity
        RETURNING id, number
    )
    INSERT INTO memberships (id, merchant_id, group_id, subgroup_id, customer_id, route, invite_id, joined_at)
    SELECT :id, :merchant, :group, seat.id, :customer, :route, :invite, :joined_at FROM seat
    RETURNING subgroup_id, (SELECT number FROM seat) AS subgroup_number
    """
)

TAKE_SEAT = text(
    "UPDATE subgroups SET member_count = member_count + 1 "
    "WHERE id = :id AND member_count < capacity RETURNING id"
)
FREE_SEAT = text("UPDATE subgroups SET member_count = member_count - 1 WHERE id = :id")
SEAT_FREED = text("UPDATE groups SET set_filled_notified = false WHERE id = :group AND set_filled_notified")
MARK_SET_FILLED = text(
    "UPDATE groups SET set_filled_notified = true WHERE merchant_id = :merchant AND id = :group "
    "AND NOT set_filled_notified RETURNING id"
)

ACTIVE_OF_CUSTOMER = text(
    """
    SELECT m.*, s.number AS subgroup_number FROM memberships m JOIN subgroups s ON s.id = m.subgroup_id
    WHERE m.merchant_id = :merchant AND m.customer_id = :customer AND m.ended_at IS NULL
    {group_filter}
    ORDER BY m.joined_at
    {lock}
    """
)

END_MEMBERSHIP = text(
    "UPDATE memberships SET ended_at = :at, end_reason = :reason, ended_by = :by "
    "WHERE id = :id AND ended_at IS NULL "
    "RETURNING id"
)


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_customer(self, merchant_id: str, customer_id: str) -> None:
        await self._session.execute(LOCK_CUSTOMER, {"merchant": merchant_id, "customer": customer_id})

    async def join_context(self, merchant_id: str, group_id: UUID, customer_id: str) -> JoinContext | None:
        row = (
            (
                await self._session.execute(
                    JOIN_CONTEXT, {"merchant": merchant_id, "group": group_id, "customer": customer_id}
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        existing = None
        if row["m_id"] is not None:
            existing = MembershipRecord(
                id=row["m_id"],
                group_id=group_id,
                subgroup_id=row["m_subgroup_id"],
                subgroup_number=row["m_subgroup_number"],
                customer_id=customer_id,
                route=row["m_route"],
                invite_id=row["m_invite_id"],
                joined_at=row["m_joined_at"],
            )
        return JoinContext(
            group=group_from_row(row),
            existing=existing,
            blacklisted=row["blacklisted"],
            standing=CustomerStanding(segments=frozenset(row["segments"]), tier_rank=row["tier_rank"]),
        )

    async def lock_seats(self, merchant_id: str, group_id: UUID) -> list[SubgroupRecord]:
        await self._session.execute(LOCK_GROUP, {"merchant": merchant_id, "group": group_id})
        rows = await self._session.execute(SEATS, {"group": group_id})
        return [subgroup_from_row(r) for r in rows.mappings()]

    async def take_first_free_seat(
        self,
        *,
        merchant_id: str,
        group_id: UUID,
        customer_id: str,
        route: str,
        invite_id: UUID | None,
        joined_at: datetime,
    ) -> MembershipRecord | None:
        membership_id = new_event_id()
        # An UPDATE whose re-check fails keeps the row lock it took; holding a full sub-group's row while the
        # slow path waits for it (under the group lock) would deadlock, so a miss rolls back to here.
        await self._session.execute(text("SAVEPOINT fast_seat"))
        row = (
            await self._session.execute(
                TAKE_FIRST_FREE_SEAT,
                {"id": membership_id, "merchant": merchant_id, "group": group_id, "customer": customer_id,
                 "route": route, "invite": invite_id, "joined_at": joined_at},
            )
        ).first()  # fmt: skip
        if row is None:
            await self._session.execute(text("ROLLBACK TO SAVEPOINT fast_seat"))
            return None
        return MembershipRecord(
            membership_id,
            group_id,
            row.subgroup_id,
            row.subgroup_number,
            customer_id,
            route,
            invite_id,
            joined_at,
        )

    async def take_seat(self, subgroup_id: UUID) -> bool:
        """False if the sub-group filled up since it was read (a fast-path join took the last seat)."""
        return (await self._session.execute(TAKE_SEAT, {"id": subgroup_id})).first() is not None

    async def open_subgroup(self, merchant_id: str, group_id: UUID, number: int, capacity: int) -> UUID:
        subgroup_id = new_event_id()
        await self._session.execute(
            insert(subgroups).values(
                id=subgroup_id,
                merchant_id=merchant_id,
                group_id=group_id,
                number=number,
                capacity=capacity,
                member_count=1,
            )
        )
        return subgroup_id

    async def free_seat(self, group_id: UUID, subgroup_id: UUID) -> None:
        # Group row before sub-group row: the same order as the slow join path, so the two cannot deadlock.
        await self._session.execute(SEAT_FREED, {"group": group_id})
        await self._session.execute(FREE_SEAT, {"id": subgroup_id})

    async def mark_set_filled(self, merchant_id: str, group_id: UUID) -> bool:
        """True the first time the set is found full since a seat last freed: the owner is told once."""
        return (
            await self._session.execute(MARK_SET_FILLED, {"merchant": merchant_id, "group": group_id})
        ).first() is not None

    async def add(
        self,
        *,
        merchant_id: str,
        group_id: UUID,
        subgroup_id: UUID,
        subgroup_number: int,
        customer_id: str,
        route: str,
        invite_id: UUID | None,
        joined_at: datetime,
    ) -> MembershipRecord:
        membership_id = new_event_id()
        await self._session.execute(
            insert(memberships).values(
                id=membership_id,
                merchant_id=merchant_id,
                group_id=group_id,
                subgroup_id=subgroup_id,
                customer_id=customer_id,
                route=route,
                invite_id=invite_id,
                joined_at=joined_at,
            )
        )
        return MembershipRecord(
            membership_id, group_id, subgroup_id, subgroup_number, customer_id, route, invite_id, joined_at
        )

    async def active_of_customer(
        self, merchant_id: str, customer_id: str, *, group_id: UUID | None = None, for_update: bool = False
    ) -> list[MembershipRecord]:
        statement = text(
            ACTIVE_OF_CUSTOMER.text.format(
                group_filter="AND m.group_id = :group" if group_id is not None else "",
                lock="FOR UPDATE OF m" if for_update else "",
            )
        )
        params: dict[str, object] = {"merchant": merchant_id, "customer": customer_id}
        if group_id is not None:
            params["group"] = group_id
        return [_membership(r) for r in (await self._session.execute(statement, params)).mappings()]

    async def end(self, membership_id: UUID, *, reason: str, by: str, at: datetime) -> bool:
        ended = await self._session.execute(
            END_MEMBERSHIP, {"id": membership_id, "reason": reason, "by": by, "at": at}
        )
        return ended.first() is not None

    async def page(
        self,
        merchant_id: str,
        *,
        group_id: UUID | None,
        subgroup_id: UUID | None,
        joined_since: datetime | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[MembershipRecord]:
        filters = ["m.merchant_id = :merchant", "m.ended_at IS NULL"]
        params: dict[str, object] = {"merchant": merchant_id, "limit": limit}
        if group_id is not None:
            filters.append("m.group_id = :group")
            params["group"] = group_id
        if subgroup_id is not None:
            filters.append("m.subgroup_id = :subgroup")
            params["subgroup"] = subgroup_id
        if joined_since is not None:
            filters.append("m.joined_at >= :since")
            params["since"] = joined_since
        if after is not None:
            filters.append("(m.joined_at, m.id) > (:after_at, :after_id)")
            params["after_at"], params["after_id"] = after
        statement = text(
            "SELECT m.*, s.number AS subgroup_number FROM memberships m "
            "JOIN subgroups s ON s.id = m.subgroup_id "
            f"WHERE {' AND '.join(filters)} ORDER BY m.joined_at, m.id LIMIT :limit"
        )
        return [_membership(r) for r in (await self._session.execute(statement, params)).mappings()]
