"""Inputs that once answered 500: each now gets a 4xx problem+json and writes nothing."""

from __future__ import annotations

from sqlalchemy import text

from meadow_runtime.testing.harness import ServiceHarness

from .helpers import merchant

PROBLEM = "application/problem+json"


async def test_reward_windows_need_a_utc_offset_and_counts_fit_their_columns(svc: ServiceHarness) -> None:
    operator = svc.auth(merchant(), "operator")
    base = {"name": "Mug", "points_price": 100}
    naive = await svc.client.post(
        "/v1/rewards",
        json={**base, "valid_from": "2027-01-01T00:00:00+08:00", "valid_until": "2027-02-01T00:00:00"},
        headers=operator,
    )
    assert naive.status_code == 422
    assert naive.headers["content-type"] == PROBLEM
    assert naive.json()["errors"][0]["pointer"] == "/valid_until"
    huge = await svc.client.post("/v1/rewards", json={**base, "stock": 3_000_000_000}, headers=operator)
    assert huge.status_code == 422
    assert huge.json()["errors"][0]["pointer"] == "/stock"
    assert (await svc.client.get("/v1/rewards", headers=operator)).json() == []


async def test_a_tier_update_must_change_something_and_set_no_field_to_null(svc: ServiceHarness) -> None:
    operator = svc.auth(merchant(), "operator")
    tier = await svc.client.post(
        "/v1/tiers", json={"name": "Gold", "rank": 1, "threshold_points": 1000}, headers=operator
    )
    assert tier.status_code == 201, tier.text
    empty = await svc.client.patch(f"/v1/tiers/{tier.json()['id']}", json={}, headers=operator)
    assert empty.status_code == 422
    assert empty.headers["content-type"] == PROBLEM
    nulled = await svc.client.patch(f"/v1/tiers/{tier.json()['id']}", json={"name": None}, headers=operator)
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["pointer"] == "/name"
    assert [t["name"] for t in (await svc.client.get("/v1/tiers", headers=operator)).json()] == ["Gold"]


async def test_a_time_zone_must_name_a_zone_not_a_region(svc: ServiceHarness) -> None:
    response = await svc.client.put(
        "/v1/settings", json={"timezone": "America"}, headers=svc.auth(merchant(), "owner")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/timezone"


async def test_history_cursors_are_plain_bounded_numbers(svc: ServiceHarness) -> None:
    m = merchant()
    for cursor in ("²", "9" * 20, "9" * 5000):
        response = await svc.client.get(
            "/v1/customers/c1/history", params={"cursor": cursor}, headers=svc.auth(m, "operator")
        )
        assert response.status_code == 422, cursor
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["pointer"] == "/cursor"


async def test_checks_beyond_the_request_models_name_the_field_at_fault(svc: ServiceHarness) -> None:
    m = merchant()
    operator = svc.auth(m, "operator")
    naive = await svc.client.get(
        "/v1/customers/c1/balance", params={"as_of": "2026-01-01T00:00:00"}, headers=operator
    )
    assert (naive.status_code, naive.json()["errors"][0]["pointer"]) == (422, "/as_of")
    reward = await svc.client.post(
        "/v1/rewards", json={"name": "Mug", "points_price": 100, "valid_until": "2027-02-01T00:00:00Z"},
        headers=operator,
    )  # fmt: skip
    assert reward.status_code == 201, reward.text
    nobody = await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward.json()["id"]}, headers=operator
    )
    assert (nobody.status_code, nobody.json()["errors"][0]["pointer"]) == (422, "/customer_id")
    # valid alone, but it would end the window before the window's start, which the update leaves as it is
    late_start = await svc.client.patch(
        f"/v1/rewards/{reward.json()['id']}", json={"valid_from": "2027-03-01T00:00:00Z"}, headers=operator
    )
    assert late_start.status_code == 422
    assert late_start.headers["content-type"] == PROBLEM
    assert "valid_until must be after valid_from" in late_start.json()["errors"][0]["detail"]
    stored = (await svc.client.get(f"/v1/rewards/{reward.json()['id']}", headers=operator)).json()
    assert stored["valid_from"] is None


async def test_a_customer_id_longer_than_its_column_is_refused_and_writes_nothing(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    response = await svc.client.post(
        f"/v1/customers/{'c' * 200}/adjustments",
        json={"points": 5, "reason": "goodwill"},
        headers=svc.auth(m, "operator"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "A value cannot be stored"
    async with svc.uow() as uow:
        written = await uow.session.execute(
            text(
                "SELECT (SELECT count(*) FROM balances WHERE merchant_id = :m)"
                " + (SELECT count(*) FROM transfers WHERE merchant_id = :m)"
            ),
            {"m": m},
        )
        assert written.scalar_one() == 0
