"""Memberships and seats. Seat changes run under the group row lock; the CHECK on `subgroups` backs it up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
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


SeatOutcome = Literal["joined", "existing", "blacklisted", "no_seat", "no_group"]


@dataclass(frozen=True)
class SeatTaken:
    """`joined` and `existing` carry the membership; the others wrote nothing. `no_seat`: the set is full."""

    outcome: SeatOutcome
    membership: MembershipRecord | None


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row as the runtime's Outbox writes it, for SQL that inserts it itself."""

    id: UUID
    topic: str
    key: str
    type: str
    payload: str
    headers: str


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

# asyncpg form ($n parameters): the join runs it on the driver connection, inside the unit of work's
# transaction or, for a join that is its own transaction, before any BEGIN (see `take_seat`).
JOIN_CONTEXT = """
    SELECT g.*,
           m.id AS m_id, m.subgroup_id AS m_subgroup_id, s.number AS m_subgroup_number, m.route AS m_route,
           m.invite_id AS m_invite_id, m.joined_at AS m_joined_at,
           EXISTS (SELECT 1 FROM blacklist b WHERE b.merchant_id = $1 AND b.customer_id = $3) AS blacklisted,
           ARRAY(SELECT cs.segment_key FROM customer_segments cs
                 WHERE cs.merchant_id = $1 AND cs.customer_id = $3 AND cs.is_member) AS segments,
           COALESCE((SELECT ct.tier_rank FROM customer_tiers ct
                     WHERE ct.merchant_id = $1 AND ct.customer_id = $3), 0) AS tier_rank
    FROM groups g
    LEFT JOIN memberships m ON m.merchant_id = g.merchant_id AND m.group_id = g.id
         AND m.customer_id = $3 AND m.ended_at IS NULL
    LEFT JOIN subgroups s ON s.id = m.subgroup_id
    WHERE g.merchant_id = $1 AND g.id = $2
"""

# Two statements on purpose: under READ COMMITTED a statement that waited for a row lock still reads
# other tables from the snapshot taken before the wait, so the seats must be read after the lock is held.
# NO KEY UPDATE, not UPDATE: inserting a membership or sub-group takes KEY SHARE on the group row (foreign
# key), and a fast-path join holding a sub-group row must not queue behind us while we wait for that row.
LOCK_GROUP = text("SELECT id FROM groups WHERE merchant_id = :merchant AND id = :group FOR NO KEY UPDATE")
SEATS = text("SELECT * FROM subgroups WHERE group_id = :group ORDER BY number")

# The fast path of a join, all of it after the eligibility decision: migration 0003 says what it does.
TAKE_SEAT_AND_RECORD = (
    "SELECT * FROM membership_take_seat($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
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

    async def _driver(self) -> Any:
        """The session's asyncpg connection: the join's hot statements skip SQLAlchemy's per-call overhead,
        and a statement sent here before the session's first `execute` runs in its own transaction."""
        connection = await self._session.connection()
        return (await connection.get_raw_connection()).driver_connection

    async def join_context(self, merchant_id: str, group_id: UUID, customer_id: str) -> JoinContext | None:
        row = await (await self._driver()).fetchrow(JOIN_CONTEXT, merchant_id, group_id, customer_id)
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
        joined_event: OutboxRow,
    ) -> SeatTaken:
        """Seat the customer in the lowest-numbered sub-group with room, or in a newly opened one, and record
        the membership and its `member.joined` outbox row, in one call (migration 0003).

        Outside a transaction the call is its own transaction: it commits before it answers, so the group's
        and sub-group's row locks are never held across a round trip. Inside one it is one more statement.
        """
        driver = await self._driver()
        membership_id = new_event_id()
        row = await driver.fetchrow(
            TAKE_SEAT_AND_RECORD,
            merchant_id, group_id, customer_id, route, invite_id, membership_id, joined_at,
            joined_event.id, joined_event.topic, joined_event.key, joined_event.type, joined_event.payload,
            joined_event.headers, new_event_id(),
        )  # fmt: skip
        outcome: SeatOutcome = row["o_outcome"]
        if row["o_membership"] is None:
            return SeatTaken(outcome, None)
        return SeatTaken(
            outcome,
            MembershipRecord(
                row["o_membership"],
                group_id,
                row["o_subgroup"],
                row["o_number"],
                customer_id,
                row["o_route"],
                row["o_invite"],
                row["o_joined_at"],
            ),
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
