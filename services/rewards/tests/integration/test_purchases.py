"""order.paid and order.refunded end to end: event in → ledger state → events out."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import text

from meadow_runtime.testing.harness import ServiceHarness
from rewards.domain.ledger import spend
from rewards.ledger.repository import TransferRecord
from rewards.ledger.service import open_wallet, record

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


async def test_a_paid_order_earns_points_once_per_order_and_says_so(svc: ServiceHarness) -> None:
    m = merchant()
    await purchase_rule(svc, m, "1", exclude=["gift_card"])
    paid = order_paid(m, "c1", "o1", [("l1", "formula", 12_345), ("l2", "gift_card", 50_000)])
    same_order_other_event = order_paid(m, "c1", "o1", [("l1", "formula", 12_345)])
    await deliver(svc, ORDERS, paid, paid, same_order_other_event)
    assert await balance(svc, m, "c1") == (123, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}

    earned = await published(svc, m, {"rewards.points_earned.v1"}, 1)
    assert [(e.data["points"], e.data["reason"], e.data["balance_after"]) for e in earned] == [
        (123, "purchase", 123)
    ]
    assert earned[0].data["cause_event_id"] == str(paid.id)


async def test_a_refund_after_spending_creates_debt_that_the_next_earning_repays(svc: ServiceHarness) -> None:
    m = merchant()
    await purchase_rule(svc, m, "1")
    await deliver(svc, ORDERS, order_paid(m, "c1", "o1", [("l1", "toys", 10_000)]))
    async with svc.uow() as uow:  # spend 80 of the 100 through the ledger service
        locked = await open_wallet(uow, (m, "c1"))
        outcome = spend(locked.wallet, uuid4(), 80, datetime.now(UTC))
        await record(
            uow, locked, outcome, TransferRecord(outcome.transfer, m, "c1", None, 80, datetime.now(UTC))
        )
        await uow.commit()
    refund = order_refunded(m, "c1", "o1", "r1", [("l1", 10_000)])
    await deliver(svc, ORDERS, refund, refund)
    assert await balance(svc, m, "c1") == (0, 80)
    reversed_ = [e.data for e in await published(svc, m, {"rewards.points_reversed.v1"}, 1)]
    assert [(r["points"], r["debt_added"], r["balance_after"], r["debt_after"]) for r in reversed_] == [
        (100, 80, 0, 80)
    ]

    await deliver(svc, ORDERS, order_paid(m, "c1", "o2", [("l1", "toys", 5_000)]))
    assert await balance(svc, m, "c1") == (0, 30)
    await deliver(svc, ORDERS, order_paid(m, "c1", "o3", [("l1", "toys", 5_000)]))
    assert await balance(svc, m, "c1") == (20, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_a_refund_arriving_before_its_order_is_settled_with_the_order(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await purchase_rule(svc, m, "1")
    paid = order_paid(m, "c1", "o1", [("l1", "toys", 10_000), ("l2", "toys", 4_000)])
    partial = order_refunded(m, "c1", "o1", "r1", [("l2", 2_000)])
    await deliver(svc, ORDERS, partial)
    assert await balance(svc, m, "c1") == (0, 0)
    await deliver(svc, ORDERS, paid, partial)
    assert await balance(svc, m, "c1") == (120, 0)
    rest = order_refunded(m, "c1", "o1", "r2", [("l2", 2_000)])
    await deliver(svc, ORDERS, rest)
    assert await balance(svc, m, "c1") == (100, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_replaying_everything_after_the_inbox_is_gone_changes_no_balance(svc: ServiceHarness) -> None:
    m = merchant()
    await purchase_rule(svc, m, "1")
    events = [
        order_paid(m, "c1", "o1", [("l1", "toys", 10_000), ("l2", "toys", 3_000)]),
        order_paid(m, "c2", "o2", [("l1", "toys", 7_000)]),
        order_refunded(m, "c1", "o1", "r1", [("l2", 3_000)]),
        order_paid(m, "c1", "o3", [("l1", "toys", 2_000)]),
        order_refunded(m, "c2", "o2", "r2", [("l1", 3_500)]),
    ]
    await deliver(svc, ORDERS, *events)
    before = [await balance(svc, m, c) for c in ("c1", "c2")]
    assert before == [(120, 0), (35, 0)]
    async with svc.uow() as uow:  # as if the inbox's retention had passed
        await uow.session.execute(text("DELETE FROM inbox"))
        await uow.commit()
    await deliver(svc, ORDERS, *reversed(events), *events)
    assert [await balance(svc, m, c) for c in ("c1", "c2")] == before
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_one_batch_of_orders_repays_debt_in_order_and_keeps_merchants_tiers_and_duplicates_apart(
    svc: ServiceHarness,
) -> None:
    a, b = merchant(), merchant()
    await purchase_rule(svc, a, "1")
    await purchase_rule(svc, b, "1.5", exclude=["gift_card"])
    await svc.client.post(
        "/v1/tiers",
        json={"name": "gold", "rank": 1, "threshold_points": 100, "multiplier": "2"},
        headers=svc.auth(b, "operator"),
    )
    await deliver(svc, ORDERS, order_paid(b, "c1", "b1", [("l1", "toys", 10_000)]))  # 150 points: gold
    await deliver(svc, ORDERS, order_paid(a, "c1", "a1", [("l1", "toys", 10_000)]))
    async with svc.uow() as uow:  # a's c1 spends 80 of 100, then a refund of a1 leaves a debt of 80
        locked = await open_wallet(uow, (a, "c1"))
        outcome = spend(locked.wallet, uuid4(), 80, datetime.now(UTC))
        await record(
            uow, locked, outcome, TransferRecord(outcome.transfer, a, "c1", None, 80, datetime.now(UTC))
        )
        await uow.commit()
    await deliver(svc, ORDERS, order_refunded(a, "c1", "a1", "r1", [("l1", 10_000)]))
    assert await balance(svc, a, "c1") == (0, 80)

    repays, repays_rest, credits = (order_paid(a, "c1", f"a{n}", [("l1", "toys", 5_000)]) for n in (2, 3, 4))
    gold = order_paid(b, "c1", "b2", [("l1", "toys", 1_000), ("l2", "gift_card", 9_999)])
    gold_again = order_paid(b, "c1", "b2", [("l1", "toys", 1_000)])  # same order, other event id
    newcomer = order_paid(b, "c2", "b3", [("l1", "toys", 1_001)])
    await deliver(svc, ORDERS, repays, gold, newcomer, repays_rest, gold_again, credits)

    assert await balance(svc, a, "c1") == (70, 0)
    assert await balance(svc, b, "c1") == (150 + 30, 0)  # 10 units × 1.5 × 2; gift cards earn nothing
    assert await balance(svc, b, "c2") == (15, 0)  # 10.01 units × 1.5, rounded down
    earned = {
        e.data["cause_event_id"]: (e.data["points"], e.data["debt_repaid"], e.data["balance_after"])
        for e in await published(svc, a, {"rewards.points_earned.v1"}, 4)
    }
    assert [earned[str(e.id)] for e in (repays, repays_rest, credits)] == [
        (50, 50, 0),
        (50, 30, 20),
        (50, 0, 70),
    ]
    for m in (a, b):
        assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}
