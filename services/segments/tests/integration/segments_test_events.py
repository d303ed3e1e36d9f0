"""Builders of the events the tests feed the service (contract models wrapped in envelopes), and the two
steps the tests drive it by: feeding events through the consumer, reading a segment's members."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import count
from typing import Any
from uuid import UUID, uuid4

from meadow_contracts import (
    CommentCreated,
    CustomerProfileUpdated,
    Envelope,
    Event,
    InviteAccepted,
    MemberJoined,
    MemberLeft,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    PostLiked,
    ProductFavorited,
    RefundedLine,
    Topic,
    VoteCast,
    model_for,
)
from meadow_runtime.consumer import Delivery
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import produce

_numbers = count(1)


def wrap(event: Event, merchant: str, subject: str) -> Envelope:
    return Envelope.wrap(event, source="test", merchant_id=merchant, subject=subject)


def order_paid(
    merchant: str,
    customer: str,
    *lines: tuple[str, str, int],
    at: datetime | None = None,
    order_id: str | None = None,
) -> Envelope:
    order = order_id or f"o{next(_numbers)}"
    event = OrderPaid(
        order_id=order,
        customer_id=customer,
        lines=tuple(
            OrderLine(line_id=f"l{i}", product_id=p, category=c, quantity=1, amount_minor=a)
            for i, (p, c, a) in enumerate(lines or (("p1", "formula", 10_000),))
        ),
        paid_at=at or datetime.now(UTC),
    )
    return wrap(event, merchant, customer)


def order_deliveries(envelopes: Sequence[Envelope]) -> list[Delivery[OrderPaid]]:
    """Order envelopes as one consumer batch, for calling the order handler directly."""
    return [
        Delivery(
            envelope=e,
            event=OrderPaid.model_validate(e.data),
            topic=Topic.COMMERCE_ORDERS.value,
            partition=0,
            offset=n,
        )
        for n, e in enumerate(envelopes)
    ]


def order_refunded(merchant: str, paid: Envelope, *, complaint: bool = False) -> Envelope:
    data = OrderPaid.model_validate(paid.data)
    event = OrderRefunded(
        order_id=data.order_id,
        refund_id=f"r{next(_numbers)}",
        customer_id=data.customer_id,
        lines=tuple(
            RefundedLine(line_id=line.line_id, amount_minor=line.amount_minor) for line in data.lines
        ),
        refunded_at=datetime.now(UTC),
        is_complaint=complaint,
    )
    return wrap(event, merchant, data.customer_id)


def profile(merchant: str, customer: str, **fields: object) -> Envelope:
    return wrap(CustomerProfileUpdated(customer_id=customer, **fields), merchant, customer)  # type: ignore[arg-type]


def favorited(merchant: str, customer: str, product: str, category: str) -> Envelope:
    event = ProductFavorited(
        customer_id=customer, product_id=product, category=category, favorited_at=datetime.now(UTC)
    )
    return wrap(event, merchant, customer)


def joined(merchant: str, customer: str, group: str, at: datetime | None = None) -> Envelope:
    event = MemberJoined(
        group_id=UUID(group),
        subgroup_id=uuid4(),
        subgroup_number=1,
        customer_id=customer,
        joined_at=at or datetime.now(UTC),
    )
    return wrap(event, merchant, customer)


def left(merchant: str, customer: str, group: str, at: datetime) -> Envelope:
    event = MemberLeft(group_id=UUID(group), subgroup_id=uuid4(), customer_id=customer, left_at=at)
    return wrap(event, merchant, customer)


def liked(merchant: str, customer: str, group: str) -> Envelope:
    event = PostLiked(post_id=uuid4(), group_id=UUID(group), customer_id=customer, liked_at=datetime.now(UTC))
    return wrap(event, merchant, customer)


def vote_cast(merchant: str, customer: str) -> Envelope:
    event = VoteCast(poll_id=uuid4(), option_id="a", customer_id=customer, cast_at=datetime.now(UTC))
    return wrap(event, merchant, customer)


def commented(
    merchant: str, customer: str, group: str, kind: str = "comment", at: datetime | None = None
) -> Envelope:
    event = CommentCreated(
        comment_id=uuid4(),
        post_id=uuid4(),
        group_id=UUID(group),
        customer_id=customer,
        kind=kind,  # type: ignore[arg-type]
        created_at=at or datetime.now(UTC),
    )
    return wrap(event, merchant, customer)


def invite_accepted(merchant: str, inviter: str, invitee: str, group: str) -> Envelope:
    event = InviteAccepted(
        invite_id=uuid4(),
        group_id=UUID(group),
        inviter_customer_id=inviter,
        invitee_customer_id=invitee,
        accepted_at=datetime.now(UTC),
    )
    return wrap(event, merchant, invitee)


async def feed(svc: ServiceHarness, settings: Settings, *envelopes: Envelope) -> None:
    """Put the events on their topics and let the service's consumer handle them."""
    for envelope in envelopes:
        await produce(settings, model_for(envelope.type).topic, envelope)
    await svc.consume()


async def members(svc: ServiceHarness, merchant: str, key: str) -> set[str]:
    """A segment's members over the API, page by page (two a page, so paging is exercised too)."""
    found: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await svc.client.get(
            f"/v1/segments/{key}/members", params=params, headers=svc.auth(merchant)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found |= {item["customer_id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return found
