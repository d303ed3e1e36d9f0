"""The expiry job and tier movements, end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meadow_runtime.testing.harness import ServiceHarness
from rewards.jobs import expire_points, reevaluate_tiers

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


async def rewards_events(svc: ServiceHarness, m: str, event_type: str, count: int) -> list[dict[str, object]]:
    return [e.data for e in await published(svc, m, {event_type}, count)]


async def test_expiry_takes_what_is_left_of_due_lots_and_announces_it(svc: ServiceHarness) -> None:
    m = merchant()
    await purchase_rule(svc, m)
    await svc.client.put("/v1/settings", json={"points_validity_days": 30}, headers=svc.auth(m, "owner"))
    old = datetime.now(UTC) - timedelta(days=40)
    await deliver(
        svc, ORDERS,
        order_paid(m, "c1", "o-old", [("l1", "toys", 10_000)], at=old),
        order_paid(m, "c1", "o-new", [("l1", "toys", 5_000)]),
    )  # fmt: skip
    assert await balance(svc, m, "c1") == (150, 0)
    await expire_points(svc.uow, svc.settings)
    await expire_points(svc.uow, svc.settings)
    assert await balance(svc, m, "c1") == (50, 0)
    expiries = (await svc.client.get("/v1/customers/c1/expiries", headers=svc.auth(m))).json()
    assert [e["points"] for e in expiries] == [50]
    expired = await rewards_events(svc, m, "rewards.points_expired.v1", 1)
    assert [(e["points"], e["balance_after"]) for e in expired] == [(100, 50)]
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_tiers_move_up_on_earning_multiply_later_earnings_and_move_down_on_refund(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await purchase_rule(svc, m)
    staff = svc.auth(m, "operator")
    await svc.client.post(
        "/v1/tiers",
        json={"name": "gold", "rank": 1, "threshold_points": 100, "multiplier": "2"},
        headers=staff,
    )
    await deliver(svc, ORDERS, order_paid(m, "c1", "o1", [("l1", "toys", 10_000)]))
    tier = (await svc.client.get("/v1/customers/c1/balance", headers=staff)).json()
    assert (tier["tier_name"], tier["points"]) == ("gold", 100)
    await deliver(svc, ORDERS, order_paid(m, "c1", "o2", [("l1", "toys", 1_000)]))
    assert await balance(svc, m, "c1") == (120, 0)

    await deliver(svc, ORDERS, order_refunded(m, "c1", "o1", "r1", [("l1", 10_000)]))
    after = (await svc.client.get("/v1/customers/c1/balance", headers=staff)).json()
    assert (after["tier_rank"], after["points"]) == (0, 20)
    await reevaluate_tiers(svc.uow, svc.settings)
    changes = await rewards_events(svc, m, "rewards.tier_changed.v1", 2)
    assert [(c["new_tier"], c["direction"]) for c in changes] == [("gold", "up"), (None, "down")]


async def test_refunding_an_order_paid_before_the_tier_window_does_not_count_against_the_tier(
    svc: ServiceHarness,
) -> None:
    """The reversal takes back points earned 400 days ago: the rolling 12 months never held them, so
    it leaves the tier alone on the refund path, in the next batch's tier pass and in the daily job."""
    m = merchant()
    await purchase_rule(svc, m)
    staff = svc.auth(m, "operator")
    await svc.client.post(
        "/v1/tiers", json={"name": "gold", "rank": 1, "threshold_points": 100}, headers=staff
    )
    old = datetime.now(UTC) - timedelta(days=400)
    await deliver(svc, ORDERS, order_paid(m, "c1", "o-old", [("l1", "toys", 50_000)], at=old))
    await deliver(svc, ORDERS, order_paid(m, "c1", "o-new", [("l1", "toys", 15_000)]))
    assert (await svc.client.get("/v1/customers/c1/balance", headers=staff)).json()["tier_name"] == "gold"

    await deliver(svc, ORDERS, order_refunded(m, "c1", "o-old", "r1", [("l1", 50_000)]))
    assert await balance(svc, m, "c1") == (150, 0)
    await deliver(svc, ORDERS, order_paid(m, "c1", "o-later", [("l1", "toys", 1_000)]))
    await reevaluate_tiers(svc.uow, svc.settings)
    after = (await svc.client.get("/v1/customers/c1/balance", headers=staff)).json()
    assert (after["tier_name"], after["points"]) == ("gold", 160)
    await deliver(svc, ORDERS, order_refunded(m, "c1", "o-new", "r2", [("l1", 15_000)]))
    changes = await rewards_events(svc, m, "rewards.tier_changed.v1", 2)
    assert [(c["new_tier"], c["direction"]) for c in changes] == [("gold", "up"), (None, "down")]
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}
