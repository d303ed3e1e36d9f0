"""Building events and reading ledger state in the rewards integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text

from meadow_contracts import Envelope, Event, Topic
from meadow_contracts.events import OrderLine, OrderPaid, OrderRefunded, RefundedLine
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually, produce

NOW = datetime.now(UTC)


def merchant() -> str:
    """A fresh merchant per test, so tests sharing a module's database never see each other's data."""
    return f"m-{uuid4().hex[:10]}"


def wrap(event: Event, merchant_id: str, subject: str, event_id: UUID | None = None) -> Envelope:
    return Envelope.wrap(event, source="test", merchant_id=merchant_id, subject=subject, id=event_id)


def order_paid(
    merchant_id: str, customer: str, order_id: str, lines: list[tuple[str, str, int]], at: datetime = NOW
) -> Envelope:
    return wrap(
        OrderPaid(
            order_id=order_id,
            customer_id=customer,
            lines=tuple(
                OrderLine(line_id=lid, product_id=f"p-{lid}", category=c, quantity=1, amount_minor=a)
                for lid, c, a in lines
            ),
            paid_at=at,
        ),
        merchant_id,
        customer,
    )


def order_refunded(
    merchant_id: str, customer: str, order_id: str, refund_id: str, lines: list[tuple[str, int]]
) -> Envelope:
    return wrap(
        OrderRefunded(
            order_id=order_id,
            refund_id=refund_id,
            customer_id=customer,
            lines=tuple(RefundedLine(line_id=lid, amount_minor=a) for lid, a in lines),
            refunded_at=NOW,
        ),
        merchant_id,
        customer,
    )


ORDERS = Topic.COMMERCE_ORDERS.value


async def deliver(svc: ServiceHarness, topic: str, *envelopes: Envelope) -> None:
    """Put the events on the topic and let the service handle everything there."""
    await produce(svc.settings, topic, *envelopes)
    await svc.consume()


async def purchase_rule(svc: ServiceHarness, m: str, rate: str = "1", **categories: list[str]) -> None:
    async with svc.uow() as uow:
        await uow.session.execute(
            text(
                "INSERT INTO earn_rules (id, merchant_id, kind, name, points_per_unit, include_categories, "
                "exclude_categories) VALUES (:id, :m, 'purchase', 'spend', :r, :inc, :exc)"
            ),
            {"id": uuid4(), "m": m, "r": Decimal(rate), "inc": categories.get("include", []),
             "exc": categories.get("exclude", [])},
        )  # fmt: skip
        await uow.commit()


async def grant(svc: ServiceHarness, m: str, points_by_customer: dict[str, int]) -> None:
    """Give customers points the way production does: paid orders under a 1 point per unit rule."""
    await purchase_rule(svc, m)
    orders = [
        order_paid(m, c, f"grant-{c}", [("l1", "any", pts * 100)]) for c, pts in points_by_customer.items()
    ]
    await deliver(svc, ORDERS, *orders)


async def balance(svc: ServiceHarness, merchant_id: str, customer: str) -> tuple[int, int]:
    """(points, debt) straight from the database."""
    async with svc.uow() as uow:
        row = (
            await uow.session.execute(
                text("SELECT points, debt FROM balances WHERE merchant_id = :m AND customer_id = :c"),
                {"m": merchant_id, "c": customer},
            )
        ).first()
    return (row.points, row.debt) if row else (0, 0)


async def ledger_invariants(svc: ServiceHarness, merchant_id: str) -> dict[str, Any]:
    """Every transfer balances; each balance row equals its lots and its postings (read through the
    `postings` view, as a reader of the ledger would)."""
    async with svc.uow() as uow:
        unbalanced = (
            await uow.session.execute(
                text(
                    "SELECT t.id FROM transfers t LEFT JOIN postings p ON p.transfer_id = t.id "
                    "WHERE t.merchant_id = :m GROUP BY t.id HAVING coalesce(sum(p.amount), 0) <> 0"
                ),
                {"m": merchant_id},
            )
        ).all()
        mismatched = (
            await uow.session.execute(
                text(
                    """
                    SELECT b.customer_id, b.points, b.debt,
                      (SELECT coalesce(sum(remaining), 0) FROM lots l
                        WHERE l.merchant_id = b.merchant_id AND l.customer_id = b.customer_id) AS lots,
                      (SELECT coalesce(sum(p.amount), 0) FROM postings p
                        JOIN transfers t ON t.id = p.transfer_id
                        WHERE t.merchant_id = b.merchant_id AND t.customer_id = b.customer_id
                          AND p.account = 'customer') AS posted,
                      (SELECT coalesce(-sum(p.amount), 0) FROM postings p
                        JOIN transfers t ON t.id = p.transfer_id
                        WHERE t.merchant_id = b.merchant_id AND t.customer_id = b.customer_id
                          AND p.account = 'debt') AS owed
                    FROM balances b WHERE b.merchant_id = :m
                    """
                ),
                {"m": merchant_id},
            )
        ).all()
    return {
        "unbalanced": [r.id for r in unbalanced],
        "mismatched": [
            r.customer_id for r in mismatched if not (r.points == r.lots == r.posted and r.debt == r.owed)
        ],
    }


async def published(svc: ServiceHarness, m: str, types: set[str], count: int) -> list[Envelope]:
    """Relay the outbox, then read the rewards topic until `count` events of these types for this merchant
    have arrived (other tests' events share the topic)."""
    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.REWARDS.value) as reader:

        async def mine() -> list[Envelope]:
            await reader.read_available()
            return [e for e in reader.envelopes() if e.merchant_id == m and e.type in types]

        return await eventually(mine, until=lambda found: len(found) >= count)
