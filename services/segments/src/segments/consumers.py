"""Which events the segments service handles, and with which handler.

Each handler writes the facts of its run of events (idempotently: a fact keyed by its natural id is
written once), then re-evaluates only the customers the run touched, naming which facts changed (down
to the products and categories of new orders and favorites) so only the segments reading them are
re-evaluated. The runner commits the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, uuid5

from meadow_contracts import (
    CommentCreated,
    CustomerProfileUpdated,
    Event,
    InviteAccepted,
    MemberBlocked,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    OrderPaid,
    OrderRefunded,
    PostLiked,
    ProductFavorited,
    TierChanged,
    Topic,
    VoteCast,
)
from meadow_runtime.consumer import Delivery, HandlerRegistry

from .domain.evaluation import touched_by_order
from .domain.rules import activity_labels
from .facts.service import reevaluate_customers
from .uow import SegmentsUnitOfWork

CONSUMED_TOPICS: tuple[str, ...] = tuple(
    t.value
    for t in (Topic.COMMERCE_ORDERS, Topic.COMMERCE_CUSTOMERS, Topic.MEMBERSHIP, Topic.CONTENT, Topic.REWARDS)
)

handlers = HandlerRegistry()

E = TypeVar("E", bound=Event)
Rows = dict[str, list[dict[str, Any]]]


async def by_merchant(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[E]]) -> dict[str, list[E]]:
    """The run's events per merchant, each merchant's definitions lock held (shared) first."""
    return {m: [e for e, _ in run] for m, run in (await by_merchant_with_times(uow, deliveries)).items()}


async def by_merchant_with_times(
    uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[E]]
) -> dict[str, list[tuple[E, datetime]]]:
    """As `by_merchant`, with each event's envelope time. The lock is taken before the handler writes
    (and so locks) any customer row, in merchant order: a save waiting for it then never sits between
    two batches of which one waits for the other's rows."""
    grouped: dict[str, list[tuple[E, datetime]]] = defaultdict(list)
    for delivery in deliveries:
        grouped[delivery.envelope.merchant_id].append((delivery.event, delivery.envelope.time))
    for merchant in sorted(grouped):
        await uow.definitions.hold_definitions_shared(merchant)
    return grouped


async def _reevaluate(
    uow: SegmentsUnitOfWork, merchant: str, touched: dict[str, set[str]], created: set[str]
) -> None:
    """Re-evaluate what the touched facts can change, and every segment for customers the batch created:
    a rule can hold on a new customer's empty facts (`not purchased`, `lifecycle: prospect`) whatever
    fact created them."""
    kinds: dict[str, frozenset[str] | None] = {c: frozenset(k) for c, k in touched.items()}
    kinds.update(dict.fromkeys(created))
    await reevaluate_customers(uow, merchant, kinds, datetime.now(UTC))


def _touch(customers: Sequence[str], *kinds: str) -> dict[str, set[str]]:
    return {c: set(kinds) for c in customers}


@handlers.on(OrderPaid)
async def on_order_paid(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[OrderPaid]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        customers = [e.customer_id for e in events]
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, e.paid_at) for e in events])
        await uow.facts.add_orders(merchant, events)
        touched: dict[str, set[str]] = defaultdict(set)
        for e in events:
            touched[e.customer_id] |= touched_by_order(
                ((x.product_id, x.category) for x in e.lines), e.channel
            )
        # A referred customer's first purchase can make their inviter a distributor.
        for inviter in await uow.facts.inviters_of_buyers(merchant, customers):
            touched.setdefault(inviter, set()).add("referrals")
        await _reevaluate(uow, merchant, touched, created)


class RefundOfAnotherCustomersOrder(ValueError):
    """A refund naming a known order of another customer: a broken event, dead-lettered (the runner
    retries it alone, then sends it to the DLQ) rather than counted against the wrong customer."""

    def __init__(self, refund_id: str, order_id: str) -> None:
        super().__init__(f"refund {refund_id!r} names order {order_id!r}, which is another customer's")


@handlers.on(OrderRefunded)
async def on_order_refunded(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[OrderRefunded]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        owners = await uow.facts.customers_of_orders(merchant, [e.order_id for e in events])
        for e in events:
            if owners.get(e.order_id, e.customer_id) != e.customer_id:
                raise RefundOfAnotherCustomersOrder(e.refund_id, e.order_id)
        customers = [e.customer_id for e in events]
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, e.refunded_at) for e in events])
        await uow.facts.add_refund_lines(
            [
                {
                    "merchant": merchant,
                    "refund_id": e.refund_id,
                    "line_id": line.line_id,
                    "order_id": e.order_id,
                    "customer_id": e.customer_id,
                    "amount_minor": line.amount_minor,
                    "refunded_at": e.refunded_at,
                    "is_complaint": e.is_complaint,
                }
                for e in events
                for line in e.lines
            ]
        )
        await _reevaluate(uow, merchant, _touch(customers, "refunds"), created)


@handlers.on(CustomerProfileUpdated)
async def on_profile_updated(
    uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[CustomerProfileUpdated]]
) -> None:
    for merchant, run in (await by_merchant_with_times(uow, deliveries)).items():
        events = [e for e, _ in run]
        # a profile update says nothing of when it happened but its envelope's time
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, at) for e, at in run])
        # a profile sent again as it is changes no outcome: only the changed ones are re-evaluated
        changed = await uow.facts.update_profiles(
            merchant,
            [
                {
                    "merchant": merchant,
                    "customer_id": e.customer_id,
                    "gender": e.gender,
                    "birth_year": e.birth_year,
                    "city": e.city,
                    "size": e.size,
                    "channel": e.channel,
                }
                for e in events
            ],
        )
        await _reevaluate(uow, merchant, _touch(sorted(changed), "profile"), created)


@handlers.on(ProductFavorited)
async def on_favorited(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[ProductFavorited]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        created = await uow.facts.ensure_customers(
            merchant, [(e.customer_id, e.favorited_at) for e in events]
        )
        await uow.facts.add_favorites(
            [
                {
                    "merchant": merchant,
                    "customer_id": e.customer_id,
                    "product_id": e.product_id,
                    "category": e.category,
                    "favorited_at": e.favorited_at,
                }
                for e in events
            ]
        )
        touched: dict[str, set[str]] = defaultdict(set)
        for e in events:
            touched[e.customer_id] |= activity_labels("favorites", [(e.product_id, e.category)])
        await _reevaluate(uow, merchant, touched, created)


@handlers.on(MemberJoined)
async def on_member_joined(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[MemberJoined]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        customers = [e.customer_id for e in events]
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, e.joined_at) for e in events])
        await uow.facts.join_groups(
            [
                {
                    "merchant": merchant,
                    "group_id": str(e.group_id),
                    "customer_id": e.customer_id,
                    "at": e.joined_at,
                }
                for e in events
            ]
        )
        await _reevaluate(uow, merchant, _touch(customers, "groups"), created)


def _leaving(
    events: Sequence[E], merchant: str, rows: Callable[[E], list[tuple[str, str, datetime]]]
) -> list[dict[str, Any]]:
    return [
        {"merchant": merchant, "group_id": group, "customer_id": customer, "at": at}
        for e in events
        for group, customer, at in rows(e)
    ]


@handlers.on(MemberLeft)
async def on_member_left(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[MemberLeft]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        await uow.facts.leave_groups(
            _leaving(events, merchant, lambda e: [(str(e.group_id), e.customer_id, e.left_at)])
        )
        await _reevaluate(uow, merchant, _touch([e.customer_id for e in events], "groups"), set())


@handlers.on(MemberRemoved)
async def on_member_removed(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[MemberRemoved]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        await uow.facts.leave_groups(
            _leaving(events, merchant, lambda e: [(str(e.group_id), e.customer_id, e.removed_at)])
        )
        await _reevaluate(uow, merchant, _touch([e.customer_id for e in events], "groups"), set())


@handlers.on(MemberBlocked)
async def on_member_blocked(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[MemberBlocked]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        await uow.facts.leave_groups(
            _leaving(
                events,
                merchant,
                lambda e: [(str(g), e.customer_id, e.blocked_at) for g in e.removed_from_group_ids],
            )
        )
        await _reevaluate(uow, merchant, _touch([e.customer_id for e in events], "groups"), set())


@handlers.on(CommentCreated)
async def on_comment_created(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[CommentCreated]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        customers = [e.customer_id for e in events if not e.by_staff]
        created = await uow.facts.ensure_customers(
            merchant, [(e.customer_id, e.created_at) for e in events if not e.by_staff]
        )
        await uow.facts.add_activities(
            [
                {
                    "merchant": merchant,
                    "activity_id": str(e.comment_id),
                    "customer_id": e.customer_id,
                    "group_id": str(e.group_id) if e.group_id else None,
                    "kind": e.kind,
                    "at": e.created_at,
                }
                for e in events
                if not e.by_staff
            ]
        )
        await _reevaluate(uow, merchant, _touch(customers, "activity"), created)


@handlers.on(VoteCast)
async def on_vote_cast(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[VoteCast]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, e.cast_at) for e in events])
        await uow.facts.add_activities(
            [
                {
                    "merchant": merchant,
                    # one vote per poll and customer, as a fixed-length id whatever the customer id's length
                    "activity_id": str(uuid5(NAMESPACE_URL, f"meadow:vote:{e.poll_id}:{e.customer_id}")),
                    "customer_id": e.customer_id,
                    "group_id": None,
                    "kind": "vote",
                    "at": e.cast_at,
                }
                for e in events
            ]
        )
        await _reevaluate(uow, merchant, {}, created)  # votes feed no rule; a new customer still counts


@handlers.on(PostLiked)
async def on_post_liked(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[PostLiked]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        customers = [e.customer_id for e in events]
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, e.liked_at) for e in events])
        await uow.facts.add_activities(
            [
                {
                    "merchant": merchant,
                    # a member likes a post once: the id is post and customer, as a vote's
                    "activity_id": str(uuid5(NAMESPACE_URL, f"meadow:like:{e.post_id}:{e.customer_id}")),
                    "customer_id": e.customer_id,
                    "group_id": str(e.group_id) if e.group_id else None,
                    "kind": "like",
                    "at": e.liked_at,
                }
                for e in events
            ]
        )
        await _reevaluate(uow, merchant, _touch(customers, "activity"), created)


@handlers.on(InviteAccepted)
async def on_invite_accepted(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[InviteAccepted]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        referred = [
            e for e in events if e.inviter_customer_id and e.inviter_customer_id != e.invitee_customer_id
        ]
        inviters = [e.inviter_customer_id for e in referred if e.inviter_customer_id]
        created = await uow.facts.ensure_customers(
            merchant,
            [
                *((e.inviter_customer_id, e.accepted_at) for e in referred if e.inviter_customer_id),
                *((e.invitee_customer_id, e.accepted_at) for e in referred),
            ],
        )
        await uow.facts.add_referrals(
            [
                {
                    "merchant": merchant,
                    "invitee_id": e.invitee_customer_id,
                    "inviter_id": e.inviter_customer_id,
                    "at": e.accepted_at,
                }
                for e in referred
            ]
        )
        await _reevaluate(uow, merchant, _touch(inviters, "referrals"), created)


@handlers.on(TierChanged)
async def on_tier_changed(uow: SegmentsUnitOfWork, deliveries: Sequence[Delivery[TierChanged]]) -> None:
    for merchant, events in (await by_merchant(uow, deliveries)).items():
        created = await uow.facts.ensure_customers(merchant, [(e.customer_id, e.changed_at) for e in events])
        await uow.facts.update_tiers(
            [{"merchant": merchant, "customer_id": e.customer_id, "rank": e.new_rank} for e in events]
        )
        await _reevaluate(uow, merchant, {}, created)  # tiers feed no rule yet; a new customer still counts
