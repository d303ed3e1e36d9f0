"""The set-based order.paid path (migration 0005) on the edges of one batch: pricing, debt with a tier
change, and the `points.earned` envelope it builds in SQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import text

from meadow_contracts import Envelope, decode
from meadow_contracts.events import OrderPaid, PointsEarned
from meadow_runtime.testing.harness import ServiceHarness
from rewards.domain.ids import transfer_id
from rewards.domain.ledger import spend
from rewards.ledger.repository import TransferRecord, database_uuid
from rewards.ledger.service import SOURCE, open_wallet, record

from .helpers import (
    ORDERS,
    balance,
    deliver,
    ledger_invariants,
    merchant,
    order_paid,
    order_refunded,
    published,
    purchase_rule,
)


async def _tier(svc: ServiceHarness, m: str, name: str, threshold: int, multiplier: str) -> None:
    response = await svc.client.post(
        "/v1/tiers",
        json={"name": name, "rank": 1, "threshold_points": threshold, "multiplier": multiplier},
        headers=svc.auth(m, "operator"),
    )
    assert response.status_code == 201, response.text


async def _tier_ranks(svc: ServiceHarness, keys: list[tuple[str, str]]) -> list[int]:
    async with svc.uow() as uow:
        return [
            (
                await uow.session.execute(
                    text("SELECT tier_rank FROM balances WHERE merchant_id = :m AND customer_id = :c"),
                    {"m": m, "c": c},
                )
            ).scalar_one()
            for m, c in keys
        ]


async def _order_lines(svc: ServiceHarness, m: str, order_id: str) -> dict[str, list[int]]:
    async with svc.uow() as uow:
        lines = (
            await uow.session.execute(
                text("SELECT lines FROM orders WHERE merchant_id = :m AND order_id = :o"),
                {"m": m, "o": order_id},
            )
        ).scalar_one()
    return dict(lines)


async def test_lines_are_priced_by_every_matching_rule_times_the_tier_held_before_the_batch(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await purchase_rule(svc, m, "1", exclude=["gift_card"])
    await purchase_rule(svc, m, "2", include=["formula"])
    await _tier(svc, m, "gold", 300, "1.5")
    await deliver(svc, ORDERS, order_paid(m, "c2", "g1", [("l1", "toys", 30_000)]))  # 300 points: gold
    assert await balance(svc, m, "c2") == (300, 0)

    plain = order_paid(
        m, "c1", "o1", [("l1", "formula", 12_345), ("l2", "gift_card", 10_000), ("l3", "toys", 999)]
    )
    gold = order_paid(m, "c2", "o2", [("l1", "diapers", 10_050), ("l1", "diapers", 10_150)])
    await deliver(svc, ORDERS, plain, gold)

    # 123.45 units × (1 + 2) = 370.35; gift cards match no rule; 9.99 × 1 = 9.99: each rounded down
    assert await _order_lines(svc, m, "o1") == {"l1": [12_345, 370], "l2": [10_000, 0], "l3": [999, 9]}
    assert await balance(svc, m, "c1") == (379, 0)
    # a line id given twice: the last one counts; 101.50 units × 1 × 1.5 = 152.25
    assert await _order_lines(svc, m, "o2") == {"l1": [10_150, 152]}
    assert await balance(svc, m, "c2") == (452, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_one_batch_repays_a_debt_and_moves_the_customer_up_a_tier_once(svc: ServiceHarness) -> None:
    m, other = merchant(), merchant()
    await purchase_rule(svc, m, "1")
    await purchase_rule(svc, other, "1")
    await deliver(svc, ORDERS, order_paid(m, "c1", "o1", [("l1", "toys", 10_000)]))
    async with svc.uow() as uow:  # spend 80 of 100, then a full refund leaves a debt of 80
        locked = await open_wallet(uow, (m, "c1"))
        outcome = spend(locked.wallet, uuid4(), 80, datetime.now(UTC))
        await record(
            uow, locked, outcome, TransferRecord(outcome.transfer, m, "c1", None, 80, datetime.now(UTC))
        )
        await uow.commit()
    await deliver(svc, ORDERS, order_refunded(m, "c1", "o1", "r1", [("l1", 10_000)]))
    assert await balance(svc, m, "c1") == (0, 80)
    await _tier(svc, m, "silver", 100, "2")

    o2 = order_paid(m, "c1", "o2", [("l1", "toys", 5_000)])
    o3 = order_paid(m, "c1", "o3", [("l1", "toys", 10_000)])
    o3_again = order_paid(m, "c1", "o3", [("l1", "toys", 99_999)])  # same order, other event id
    elsewhere = order_paid(other, "c1", "x1", [("l1", "toys", 20_000)])
    await deliver(svc, ORDERS, o2, elsewhere, o3, o3_again)

    # Both orders earn at the multiplier held before the batch (none): 50 repays 50, 100 repays the last
    # 30 and credits 70. Rolling net points 100 - 100 + 150 reach silver: one tier change.
    assert await balance(svc, m, "c1") == (70, 0)
    assert await balance(svc, other, "c1") == (200, 0)
    earned = {
        e.data["cause_event_id"]: (e.data["points"], e.data["debt_repaid"], e.data["balance_after"])
        for e in await published(svc, m, {"rewards.points_earned.v1"}, 3)
    }
    assert [earned[str(e.id)] for e in (o2, o3)] == [(50, 50, 0), (100, 30, 70)]
    assert str(o3_again.id) not in earned
    changes = [e.data for e in await published(svc, m, {"rewards.tier_changed.v1"}, 1)]
    assert [(c["old_tier"], c["new_tier"], c["new_rank"], c["direction"]) for c in changes] == [
        (None, "silver", 1, "up")
    ]
    assert await _tier_ranks(svc, [(m, "c1"), (other, "c1")]) == [1, 0]

    await deliver(svc, ORDERS, order_paid(m, "c1", "o4", [("l1", "toys", 5_000)]))  # now at silver: × 2
    assert await balance(svc, m, "c1") == (170, 0)
    for merchant_id in (m, other):
        assert await ledger_invariants(svc, merchant_id) == {"unbalanced": [], "mismatched": []}


async def test_the_points_earned_envelope_built_in_sql_is_the_one_the_models_write(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await purchase_rule(svc, m, "1")
    shanghai = datetime(2026, 3, 1, 9, 30, 15, 120, tzinfo=timezone(timedelta(hours=8)))
    new_york = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    whole_utc = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    paid = [
        order_paid(m, "c1", "o1", [("l1", "toys", 12_345)], at=shanghai),
        order_paid(m, "c2", "o2", [("l1", "toys", 10_000)], at=new_york),
        order_paid(m, "c1", "o3", [("l1", "toys", 100)], at=whole_utc),
    ]
    await deliver(svc, ORDERS, *paid)

    async with svc.uow() as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT id, aggregatetype, aggregateid, type, payload FROM outbox "
                    "WHERE type = :t AND payload->>'merchant_id' = :m ORDER BY position"
                ),
                {"t": PointsEarned.event_type, "m": m},
            )
        ).all()
    assert len(rows) == 3
    # c1's and c2's events sit in different partitions, so the batch may hold c2's first; one customer's
    # events keep their order, which is what balance_after follows.
    by_cause = {row.payload["data"]["cause_event_id"]: row for row in rows}
    balances = {"c1": 0, "c2": 0}
    for event in paid:
        row = by_cause[str(event.id)]
        envelope = Envelope.model_validate(row.payload)
        order = decode(event)
        assert isinstance(order, OrderPaid)
        points = order.total_minor // 100
        balances[order.customer_id] += points
        expected = Envelope.wrap(
            PointsEarned(
                transfer_id=transfer_id(m, "order", order.order_id, "purchase"),
                customer_id=order.customer_id, points=points, reason="purchase", cause_event_id=event.id,
                expires_at=order.paid_at + timedelta(days=365), debt_repaid=0,
                balance_after=balances[order.customer_id],
            ),
            source=SOURCE, merchant_id=m, subject=order.customer_id, id=envelope.id, time=envelope.time,
        )  # fmt: skip
        assert row.payload == json.loads(expected.model_dump_json())
        assert (row.id, row.aggregatetype, row.aggregateid) == (envelope.id, PointsEarned.topic, expected.key)
        assert (envelope.id.version, envelope.id.variant) == (7, uuid.RFC_4122)
    # One random draw numbers the batch's events: each id still carries the time it was made.
    made_at = [datetime.fromtimestamp((row.id.int >> 80) / 1000, UTC) for row in rows]
    assert all(abs(at - datetime.now(UTC)) < timedelta(minutes=1) for at in made_at)
    assert len({row.id for row in rows}) == 3
    assert [by_cause[str(e.id)].payload["data"]["expires_at"] for e in paid] == [
        "2027-03-01T09:30:15.000120+08:00",
        "2027-03-01T09:30:00-05:00",
        "2027-03-01T09:30:00Z",
    ]


async def test_an_order_sent_twice_to_the_database_function_fails_the_batch_instead_of_earning_twice(
    svc: ServiceHarness,
) -> None:
    """The handler sends each order once; the function's own guard, should a caller not, is the
    earning's deterministic id (its transfer's and lot's): the batch fails whole, and the runner then
    retries it event by event."""
    m = merchant()
    await purchase_rule(svc, m, "1")
    paid_at = datetime.now(UTC)
    tid = database_uuid(transfer_id(m, "order", "o1", "purchase").bytes)
    twice = [(i, m, "o1", "c1", paid_at, 0, uuid4(), tid, "l1", "toys", 10_000) for i in (1, 2)]
    async with svc.uow() as uow:
        with pytest.raises(UniqueViolationError, match="duplicate key"):
            await uow.ledger.earn_purchases(
                twice, emitted_at="2026-01-01T00:00:00Z", event=(PointsEarned.topic, "t", "test")
            )
    async with svc.uow() as uow:
        orders = await uow.session.execute(
            text("SELECT count(*) FROM orders WHERE merchant_id = :m"), {"m": m}
        )
        assert orders.scalar_one() == 0
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_the_events_of_one_call_are_numbered_from_one_draw(svc: ServiceHarness) -> None:
    """One UUIDv7 per call, the batch's `points.earned` ids numbered from it (migrations 0007, 0011):
    they share everything but their last four bytes, which count up from the draw's by the order's
    position."""
    m = merchant()
    await purchase_rule(svc, m, "1")
    paid_at = datetime.now(UTC)
    batch = [
        (i, m, f"o{i}", f"c{i}", paid_at, 0, uuid4(),
         database_uuid(transfer_id(m, "order", f"o{i}", "purchase").bytes), "l1", "toys", 10_000)
        for i in range(1, 6)
    ]  # fmt: skip
    async with svc.uow() as uow:
        await uow.ledger.earn_purchases(
            batch, emitted_at="2026-01-01T00:00:00Z", event=(PointsEarned.topic, "t", "test")
        )
        ids = (
            (
                await uow.session.execute(
                    text(
                        "SELECT id FROM outbox WHERE aggregateid LIKE :m "
                        "ORDER BY payload->'data'->>'customer_id'"
                    ),
                    {"m": f"{m}:%"},
                )
            )
            .scalars()
            .all()
        )
        await uow.commit()
    assert len(ids) == 5
    assert len({i.bytes[:12] for i in ids}) == 1
    tails = [int.from_bytes(i.bytes[12:], "big") for i in ids]
    assert [(t - tails[0]) % 2**32 for t in tails] == [0, 1, 2, 3, 4]


async def test_identifier_columns_compare_bytewise(svc: ServiceHarness) -> None:
    async with svc.uow() as uow:
        collations = (
            await uow.session.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name IN ('merchant_id', 'customer_id', "
                    "'order_id') AND table_name NOT IN ('outbox', 'inbox', 'idempotency_keys')"
                )
            )
        ).all()
    assert collations
    assert {(table, column) for table, column, collation in collations if collation != "C"} == set()
