"""Balances, history, expiries, adjustments, earn rules, tiers and settings over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meadow_runtime.testing.harness import ServiceHarness

from .helpers import ORDERS, balance, deliver, grant, ledger_invariants, merchant, order_paid


async def test_staff_adjustments_are_audited_and_cannot_overdraw(svc: ServiceHarness) -> None:
    m = merchant()
    operator = svc.auth(m, "operator")
    credit = await svc.client.post(
        "/v1/customers/c1/adjustments",
        json={"points": 500, "reason": "goodwill for late parcel"},
        headers=operator,
    )
    assert credit.status_code == 201, credit.text
    assert credit.json()["balance_after"] == 500
    debit = await svc.client.post(
        "/v1/customers/c1/adjustments", json={"points": -200, "reason": "duplicate credit"}, headers=operator
    )
    assert debit.json()["balance_after"] == 300
    overdraw = await svc.client.post(
        "/v1/customers/c1/adjustments", json={"points": -301, "reason": "too much"}, headers=operator
    )
    assert overdraw.status_code == 409
    zero = await svc.client.post(
        "/v1/customers/c1/adjustments", json={"points": 0, "reason": "x"}, headers=operator
    )
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["pointer"] == "/points"
    support = await svc.client.post(
        "/v1/customers/c1/adjustments", json={"points": 5, "reason": "x"}, headers=svc.auth(m, "support")
    )
    assert support.status_code == 403
    audit = (await svc.client.get("/v1/adjustments", headers=operator)).json()
    assert [(a["points"], a["reason"], a["actor"]) for a in audit] == [
        (-200, "duplicate credit", "operator-" + m), (500, "goodwill for late parcel", "operator-" + m)
    ]  # fmt: skip
    assert await balance(svc, m, "c1") == (300, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_history_pages_backwards_and_balance_as_of_a_past_time(svc: ServiceHarness) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 10})
    between = datetime.now(UTC)
    await deliver(
        svc, ORDERS, *(order_paid(m, "c1", f"o{i}", [("l1", "toys", 100 * (i + 1))]) for i in range(4))
    )
    customer = svc.auth(m, "customer", "c1")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await svc.client.get("/v1/customers/c1/history", params=params, headers=customer)).json()
        seen += [item["balance_change"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [1, 2, 3, 4, 10]
    assert len(seen) == 5
    now = (await svc.client.get("/v1/customers/c1/balance", headers=customer)).json()
    assert (now["points"], now["debt"]) == (20, 0)
    past = await svc.client.get(
        "/v1/customers/c1/balance", params={"as_of": between.isoformat()}, headers=customer
    )
    assert past.json()["points"] == 10
    expiries = (await svc.client.get("/v1/customers/c1/expiries", headers=customer)).json()
    assert sum(e["points"] for e in expiries) == 20
    assert datetime.fromisoformat(expiries[0]["expires_at"]) > datetime.now(UTC) + timedelta(days=360)


async def test_customers_read_only_their_own_data_and_merchants_are_isolated(svc: ServiceHarness) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 10})
    other_customer = svc.auth(m, "customer", "c2")
    for path in ("balance", "history", "expiries", "redemptions"):
        response = await svc.client.get(f"/v1/customers/c1/{path}", headers=other_customer)
        assert response.status_code == 403, path
        assert response.headers["content-type"] == "application/problem+json"
    elsewhere = await svc.client.get("/v1/customers/c1/balance", headers=svc.auth(merchant(), "owner"))
    assert elsewhere.json()["points"] == 0
    unauthenticated = await svc.client.get("/v1/customers/c1/balance")
    assert unauthenticated.status_code == 401
    rules = await svc.client.get("/v1/earn-rules", headers=svc.auth(m, "customer", "c1"))
    assert rules.status_code == 403


async def test_earn_rules_validate_by_kind_and_tiers_keep_ranks_unique(svc: ServiceHarness) -> None:
    m = merchant()
    staff = svc.auth(m, "operator")
    missing_rate = await svc.client.post(
        "/v1/earn-rules", json={"kind": "purchase", "name": "x"}, headers=staff
    )
    assert missing_rate.status_code == 422
    negative = await svc.client.post(
        "/v1/earn-rules", json={"kind": "check_in", "name": "x", "points": -5}, headers=staff
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["pointer"] == "/points"
    created = await svc.client.post(
        "/v1/earn-rules",
        json={"kind": "check_in", "name": "daily", "points": 5, "daily_limit": 1},
        headers=staff,
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    changed = await svc.client.patch(f"/v1/earn-rules/{rule_id}", json={"points": 8}, headers=staff)
    assert changed.json()["points"] == 8
    wrong_field = await svc.client.patch(
        f"/v1/earn-rules/{rule_id}", json={"points_per_unit": "2"}, headers=staff
    )
    assert wrong_field.status_code == 422
    assert (
        await svc.client.get(f"/v1/earn-rules/{rule_id}", headers=svc.auth(merchant()))
    ).status_code == 404

    gold = {"name": "gold", "rank": 2, "threshold_points": 5000, "multiplier": "1.5"}
    assert (await svc.client.post("/v1/tiers", json=gold, headers=staff)).status_code == 201
    clash = await svc.client.post("/v1/tiers", json={**gold, "name": "platinum"}, headers=staff)
    assert clash.status_code == 409
    assert clash.json()["field"] == "rank"
    assert [t["name"] for t in (await svc.client.get("/v1/tiers", headers=staff)).json()] == ["gold"]

    bad_zone = await svc.client.put(
        "/v1/settings", json={"timezone": "Mars/Olympus"}, headers=svc.auth(m, "owner")
    )
    assert bad_zone.status_code == 422
    saved = await svc.client.put(
        "/v1/settings", json={"points_validity_days": 30}, headers=svc.auth(m, "owner")
    )
    assert saved.json() == {"points_validity_days": 30, "timezone": "Asia/Shanghai"}


async def test_the_api_is_documented(svc: ServiceHarness) -> None:
    schema = (await svc.client.get("/openapi.json")).json()
    for path in (
        "/v1/customers/{customer_id}/balance", "/v1/customers/{customer_id}/history", "/v1/earn-rules",
        "/v1/tiers", "/v1/rewards", "/v1/redemptions", "/v1/redemptions/{redemption_id}/cancel",
    ):  # fmt: skip
        assert path in schema["paths"], path
