"""Joining, leaving and removal; the seat placement runs under the group row lock so no sub-group overfills.

Lock order, everywhere: the customer's advisory lock, then (if needed) the group row. Never the reverse.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from meadow_contracts import Envelope, GroupSetFilled, MemberJoined, MemberLeft, MemberRemoved, utc_now
from meadow_contracts.events import JoinRoute
from meadow_runtime.errors import NotFound, Problem
from meadow_runtime.telemetry import current_trace_headers

from ..domain.join_rules import RuleFailure, failed_rules
from ..domain.placement import OpenSubgroup, SeatIn, SetFull, place
from ..domain.placement import SubgroupSeats as Seats
from ..groups.repository import GroupRecord
from ..uow import MembershipUnitOfWork
from .repository import JoinContext, MembershipRecord, OutboxRow, SeatTaken
from .schemas import Eligibility, EligibleGroup, IneligibleGroup, MembershipOut

RefusalReason = Literal["blacklisted", "not_eligible", "group_archived", "group_full"]

# Placeholder for the sub-group of `member.joined` until the seat is taken: the seat call replaces it.
UNKNOWN_YET = UUID(int=0)

REFUSAL_TITLES: dict[RefusalReason, str] = {
    "blacklisted": "The customer is blocked by this merchant",
    "not_eligible": "The customer does not meet the group's join rules",
    "group_archived": "The group takes no new members",
    "group_full": "Every sub-group of this group is full",
}


class JoinRefused(Problem):
    def __init__(
        self, reason: RefusalReason, group_id: UUID, detail: str, failures: tuple[RuleFailure, ...] = ()
    ) -> None:
        super().__init__(
            409,
            REFUSAL_TITLES[reason],
            detail,
            type_="join-refused",
            reason=reason,
            group_id=str(group_id),
            failed_rules=[{k: v for k, v in asdict(f).items() if v not in (None, ())} for f in failures],
        )
        self.reason = reason
        self.group_id = group_id


class GroupSetIsFull(JoinRefused):
    def __init__(self, group_id: UUID, customer_id: str, capacity: int) -> None:
        super().__init__(
            "group_full", group_id, f"All {capacity} seats are taken; the merchant has been told."
        )
        self.customer_id = customer_id
        self.capacity = capacity


@dataclass(frozen=True)
class JoinOutcome:
    membership: MembershipRecord
    newly_joined: bool

    def render(self) -> MembershipOut:
        return render(self.membership, already_member=not self.newly_joined)


def render(membership: MembershipRecord, *, already_member: bool = False) -> MembershipOut:
    # Field by field, not `asdict`: asdict deep-copies every value, on every join's response.
    return MembershipOut(
        id=membership.id,
        group_id=membership.group_id,
        subgroup_id=membership.subgroup_id,
        subgroup_number=membership.subgroup_number,
        customer_id=membership.customer_id,
        route=membership.route,
        invite_id=membership.invite_id,
        joined_at=membership.joined_at,
        already_member=already_member,
    )


async def _join_context(
    uow: MembershipUnitOfWork, merchant_id: str, group_id: UUID, customer_id: str
) -> JoinContext:
    """The customer's standing toward the group; raises NotFound, or JoinRefused unless already a member."""
    context = await uow.members.join_context(merchant_id, group_id, customer_id)
    if context is None:
        raise NotFound("group", group_id)
    if context.existing is None and (refusal := _refusal(context, group_id)) is not None:
        raise refusal
    return context


def _refusal(context: JoinContext, group_id: UUID) -> JoinRefused | None:
    if context.blacklisted:
        return JoinRefused("blacklisted", group_id, "Blocked customers cannot join this merchant's groups.")
    if context.group.archived_at is not None:
        return JoinRefused("group_archived", group_id, "This group was archived.")
    failures = failed_rules(context.group.rules, context.standing)
    if failures:
        return JoinRefused("not_eligible", group_id, failures[0].detail, failures)
    return None


def _joined_event(
    uow: MembershipUnitOfWork, *, merchant_id: str, group_id: UUID, customer_id: str, route: JoinRoute,
    invite_id: UUID | None, joined_at: datetime,
) -> OutboxRow:  # fmt: skip
    """`member.joined` as the Outbox would write it; the seat fills in the sub-group fields in SQL."""
    event = MemberJoined(
        group_id=group_id,
        subgroup_id=UNKNOWN_YET,
        subgroup_number=1,
        customer_id=customer_id,
        route=route,
        invite_id=invite_id,
        joined_at=joined_at,
    )
    envelope = Envelope.wrap(event, source=uow.source, merchant_id=merchant_id, subject=customer_id)
    return OutboxRow(
        envelope.id,
        event.topic,
        envelope.key,
        envelope.type,
        envelope.model_dump_json(),
        json.dumps(current_trace_headers()),
    )


def _seated(seat: SeatTaken, group_id: UUID) -> JoinOutcome | None:
    """The outcome of the one-call seat, or None when the set is full (the slow path decides)."""
    if seat.outcome == "blacklisted":
        raise JoinRefused("blacklisted", group_id, "Blocked customers cannot join this merchant's groups.")
    if seat.outcome == "no_group":
        raise NotFound("group", group_id)
    if seat.membership is None:
        return None
    return JoinOutcome(seat.membership, newly_joined=seat.outcome == "joined")


async def join(
    uow: MembershipUnitOfWork,
    *,
    merchant_id: str,
    group_id: UUID,
    customer_id: str,
    route: JoinRoute = "direct",
    invite_id: UUID | None = None,
) -> JoinOutcome:
    """Seat the customer, or raise `JoinRefused` saying why. Joining twice returns the first membership."""
    await uow.members.lock_customer(merchant_id, customer_id)
    context = await _join_context(uow, merchant_id, group_id, customer_id)
    if context.existing is not None:
        return JoinOutcome(context.existing, newly_joined=False)

    joined_at = utc_now()
    seat = await uow.members.take_first_free_seat(
        merchant_id=merchant_id, group_id=group_id, customer_id=customer_id, route=route, invite_id=invite_id,
        joined_at=joined_at,
        joined_event=_joined_event(
            uow, merchant_id=merchant_id, group_id=group_id, customer_id=customer_id, route=route,
            invite_id=invite_id, joined_at=joined_at,
        ),
    )  # fmt: skip
    seated = _seated(seat, group_id)
    if seated is not None:
        return seated
    membership = await _seat_under_group_lock(
        uow, context.group, customer_id=customer_id, route=route, invite_id=invite_id, joined_at=joined_at
    )
    uow.outbox.add(
        MemberJoined(
            group_id=group_id,
            subgroup_id=membership.subgroup_id,
            subgroup_number=membership.subgroup_number,
            customer_id=customer_id,
            route=route,
            invite_id=invite_id,
            joined_at=joined_at,
        ),
        merchant_id=merchant_id,
        subject=customer_id,
    )
    return JoinOutcome(membership, newly_joined=True)


async def join_as_own_transaction(
    uow: MembershipUnitOfWork, *, merchant_id: str, group_id: UUID, customer_id: str
) -> JoinOutcome:
    """A direct join with nothing else to commit: two round trips, and the seat is committed as it is taken.

    The eligibility read takes no lock: a segment, tier or rule change landing just after it is the same
    as that change arriving just after the join. What the customer lock guards (already a member, blocked)
    is checked again under that lock by the seat call. When the set is full, the whole join runs again
    the transactional way, which refuses (and tells the owner) or takes a seat freed meanwhile.
    """
    if uow.session.in_transaction():
        raise RuntimeError("a join as its own transaction needs a unit of work that has not begun")
    context = await _join_context(uow, merchant_id, group_id, customer_id)
    if context.existing is not None:
        return JoinOutcome(context.existing, newly_joined=False)

    joined_at = utc_now()
    seat = await uow.members.take_first_free_seat(
        merchant_id=merchant_id, group_id=group_id, customer_id=customer_id, route="direct", invite_id=None,
        joined_at=joined_at,
        joined_event=_joined_event(
            uow, merchant_id=merchant_id, group_id=group_id, customer_id=customer_id, route="direct",
            invite_id=None, joined_at=joined_at,
        ),
    )  # fmt: skip
    seated = _seated(seat, group_id)
    if seated is not None:
        return seated
    return await join(uow, merchant_id=merchant_id, group_id=group_id, customer_id=customer_id)


async def _seat_under_group_lock(
    uow: MembershipUnitOfWork,
    group: GroupRecord,
    *,
    customer_id: str,
    route: JoinRoute,
    invite_id: UUID | None,
    joined_at: datetime,
) -> MembershipRecord:
    """The slow path, when no existing sub-group had room: decide under the group lock to open one or refuse.

    Opening sub-groups and refusing happen only here, one join at a time per group. Fast-path joins can still
    take seats meanwhile (they only ever fill existing sub-groups), so a lost race re-reads and re-places.
    """
    merchant_id, group_id = group.merchant_id, group.id
    while True:
        seats = await uow.members.lock_seats(merchant_id, group_id)
        placement = place(
            [Seats(s.number, s.capacity, s.member_count) for s in seats],
            capacity=group.subgroup_capacity,
            max_subgroups=group.max_subgroups,
        )
        match placement:
            case SetFull(capacity=capacity):
                raise GroupSetIsFull(group_id, customer_id, capacity)
            case OpenSubgroup(number=number):
                subgroup_id = await uow.members.open_subgroup(
                    merchant_id, group_id, number, group.subgroup_capacity
                )
            case SeatIn(number=number):
                subgroup_id = next(s.id for s in seats if s.number == number)
                if not await uow.members.take_seat(subgroup_id):
                    continue
        return await uow.members.add(
            merchant_id=merchant_id, group_id=group_id, subgroup_id=subgroup_id, subgroup_number=number,
            customer_id=customer_id, route=route, invite_id=invite_id, joined_at=joined_at,
        )  # fmt: skip


async def tell_owner_set_is_full(
    uow: MembershipUnitOfWork, merchant_id: str, refused: GroupSetIsFull
) -> None:
    """Emit `group_set_filled` once per filling (not once per refused customer) so the owner can open room."""
    if await uow.members.mark_set_filled(merchant_id, refused.group_id):
        uow.outbox.add(
            GroupSetFilled(
                group_id=refused.group_id,
                refused_customer_id=refused.customer_id,
                capacity=refused.capacity,
                filled_at=utc_now(),
            ),
            merchant_id=merchant_id,
            subject=str(refused.group_id),
        )


async def end_membership(
    uow: MembershipUnitOfWork,
    *,
    merchant_id: str,
    group_id: UUID,
    customer_id: str,
    by: str,
    removed: bool,
    reason: str | None = None,
) -> MembershipRecord:
    """Leave (by the customer) or remove (by staff); either frees the seat."""
    await uow.members.lock_customer(merchant_id, customer_id)
    active = await uow.members.active_of_customer(
        merchant_id, customer_id, group_id=group_id, for_update=True
    )
    if not active:
        raise NotFound("membership", f"of customer {customer_id} in group {group_id}")
    membership = active[0]
    at = utc_now()
    await uow.members.end(membership.id, reason="removed" if removed else "left", by=by, at=at)
    await uow.members.free_seat(group_id, membership.subgroup_id)
    if removed:
        uow.outbox.add(
            MemberRemoved(
                group_id=group_id,
                subgroup_id=membership.subgroup_id,
                customer_id=customer_id,
                removed_by=by,
                reason=reason,
                removed_at=at,
            ),
            merchant_id=merchant_id,
            subject=customer_id,
        )
    else:
        uow.outbox.add(
            MemberLeft(
                group_id=group_id, subgroup_id=membership.subgroup_id, customer_id=customer_id, left_at=at
            ),
            merchant_id=merchant_id,
            subject=customer_id,
        )
    return membership


async def eligibility(uow: MembershipUnitOfWork, merchant_id: str, customer_id: str) -> Eligibility:
    groups = await uow.groups.active(merchant_id)
    seats = await uow.groups.subgroups_of(merchant_id, [g.id for g in groups])
    standing = await uow.projections.standing(merchant_id, customer_id)
    blacklisted = await uow.blacklist.contains(merchant_id, customer_id)
    member_of = {m.group_id for m in await uow.members.active_of_customer(merchant_id, customer_id)}
    joinable: list[EligibleGroup] = []
    not_joinable: list[IneligibleGroup] = []
    for group in groups:
        if group.id in member_of:
            not_joinable.append(IneligibleGroup(group_id=group.id, name=group.name, reason="already_member"))
            continue
        if blacklisted:
            continue
        failures = failed_rules(group.rules, standing)
        if failures:
            not_joinable.append(
                IneligibleGroup(
                    group_id=group.id,
                    name=group.name,
                    reason="not_eligible",
                    failed_rules=[
                        {k: v for k, v in asdict(f).items() if v not in (None, ())} for f in failures
                    ],
                )
            )
            continue
        group_seats = seats.get(group.id, [])
        taken = sum(s.member_count for s in group_seats)
        seats_left = group.subgroup_capacity * group.max_subgroups - taken
        # Sub-groups keep the capacity they were opened with only until a resize, which updates them all.
        if seats_left <= 0:
            not_joinable.append(IneligibleGroup(group_id=group.id, name=group.name, reason="group_full"))
            continue
        joinable.append(
            EligibleGroup(group_id=group.id, name=group.name, purpose=group.purpose, seats_left=seats_left)
        )
    return Eligibility(
        customer_id=customer_id, blacklisted=blacklisted, groups=joinable, not_joinable=not_joinable
    )


async def join_from_product_page(
    uow: MembershipUnitOfWork, *, merchant_id: str, customer_id: str, product_id: str, category: str | None
) -> JoinOutcome:
    """Join the first group aimed at this product (then its category) that the customer may join now."""
    candidates = await uow.groups.targeting_product(merchant_id, product_id, category)
    if not candidates:
        raise NotFound("group", f"for product {product_id}")
    member_of = {m.group_id: m for m in await uow.members.active_of_customer(merchant_id, customer_id)}
    for group in candidates:
        if group.id in member_of:
            return JoinOutcome(member_of[group.id], newly_joined=False)
    standing = await uow.projections.standing(merchant_id, customer_id)
    eligible = [g for g in candidates if not failed_rules(g.rules, standing)]
    # With no eligible group, joining the first candidate raises the refusal that explains the best match.
    choices = eligible or candidates[:1]
    for position, group in enumerate(choices, start=1):
        try:
            return await join(
                uow, merchant_id=merchant_id, group_id=group.id, customer_id=customer_id, route="product_page"
            )
        except GroupSetIsFull:
            if position == len(choices):
                raise
    raise AssertionError("unreachable: the loop either returns or raises")
