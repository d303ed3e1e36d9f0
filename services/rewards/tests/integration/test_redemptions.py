"""Redemption: points and stock in one transaction, exactly-once under concurrency, cancellable."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from meadow_runtime.testing.harness import ServiceHarness

from .helpers import balance, grant, ledger_invariants, merchant, published


async def create_reward(svc: ServiceHarness, m: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Tote bag", "points_price": 100, **fields}
    response = await svc.client.post("/v1/rewards", json=body, headers=svc.auth(m, "operator"))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def redeem_as(
    svc: ServiceHarness, m: str, customer: str, reward_id: str, **body: Any
) -> httpx.Response:
    return await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward_id, **body}, headers=svc.auth(m, "customer", customer)
    )


async def test_200_concurrent_redemptions_of_stock_10_yield_exactly_10(svc: ServiceHarness) -> None:
    m = merchant()
    customers = [f"c{i}" for i in range(200)]
    await grant(svc, m, dict.fromkeys(customers, 100))
    reward = await create_reward(svc, m, stock=10)

    async def redeem(customer: str) -> int:
        response = await svc.client.post(
            "/v1/redemptions", json={"reward_id": reward["id"]}, headers=svc.auth(m, "customer", customer)
        )
        return response.status_code

    codes = await asyncio.gather(*(redeem(c) for c in customers))
    assert sorted(set(codes)) == [201, 409]
    assert codes.count(201) == 10
    stock = (await svc.client.get(f"/v1/rewards/{reward['id']}", headers=svc.auth(m))).json()["stock"]
    assert stock == 0
    spent = [c for c in customers if await balance(svc, m, c) == (0, 0)]
    assert len(spent) == 10
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_100_concurrent_redemptions_by_one_customer_with_points_for_3_yield_exactly_3(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 350})
    reward = await create_reward(svc, m)
    headers = svc.auth(m, "customer", "c1")

    async def redeem() -> int:
        response = await svc.client.post("/v1/redemptions", json={"reward_id": reward["id"]}, headers=headers)
        return response.status_code

    codes = await asyncio.gather(*(redeem() for _ in range(100)))
    assert codes.count(201) == 3
    assert codes.count(409) == 97
    assert await balance(svc, m, "c1") == (50, 0)
    listed = await svc.client.get("/v1/customers/c1/redemptions", headers=headers)
    assert len(listed.json()) == 3


async def test_cancel_restores_points_and_stock_and_both_are_announced(svc: ServiceHarness) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 300})
    reward = await create_reward(svc, m, stock=5, points_price=120)
    redeemed = await svc.client.post(
        "/v1/redemptions",
        json={"reward_id": reward["id"], "quantity": 2},
        headers=svc.auth(m, "customer", "c1"),
    )
    assert redeemed.status_code == 201, redeemed.text
    assert await balance(svc, m, "c1") == (60, 0)
    redemption_id = redeemed.json()["id"]
    for _ in range(2):
        cancelled = await svc.client.post(
            f"/v1/redemptions/{redemption_id}/cancel", headers=svc.auth(m, "operator")
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
    assert await balance(svc, m, "c1") == (300, 0)
    assert (await svc.client.get(f"/v1/rewards/{reward['id']}", headers=svc.auth(m))).json()["stock"] == 5
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}

    expected = [
        "rewards.points_spent.v1",
        "rewards.redemption_cancelled.v1",
        "rewards.redemption_completed.v1",
    ]
    mine = await published(svc, m, set(expected), 3)
    assert sorted(e.type for e in mine) == expected


async def test_idempotency_key_replays_the_first_outcome_and_refuses_other_bodies(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 1000})
    reward = await create_reward(svc, m)
    headers = {**svc.auth(m, "customer", "c1"), "Idempotency-Key": "k-1"}
    first = await svc.client.post("/v1/redemptions", json={"reward_id": reward["id"]}, headers=headers)
    again = await svc.client.post("/v1/redemptions", json={"reward_id": reward["id"]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward["id"], "quantity": 2}, headers=headers
    )
    assert other.status_code == 409
    assert await balance(svc, m, "c1") == (900, 0)


async def test_bad_redemptions_are_problems_and_change_nothing(svc: ServiceHarness) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 150})
    reward = await create_reward(svc, m, per_customer_limit=1, points_price=100)
    customer = svc.auth(m, "customer", "c1")
    unknown = await svc.client.post(
        "/v1/redemptions", json={"reward_id": "00000000-0000-0000-0000-000000000000"}, headers=customer
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    negative = await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward["id"], "quantity": -1}, headers=customer
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["pointer"] == "/quantity"
    other_merchant = await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward["id"]}, headers=svc.auth(merchant(), "customer", "c1")
    )
    assert other_merchant.status_code == 404
    too_many = await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward["id"], "quantity": 2}, headers=customer
    )
    assert too_many.status_code == 409
    assert too_many.json()["title"] == "Per-customer limit reached"
    assert (
        await svc.client.post("/v1/redemptions", json={"reward_id": reward["id"]}, headers=customer)
    ).status_code == 201
    assert await balance(svc, m, "c1") == (50, 0)
    expensive = await create_reward(svc, m, points_price=51)
    short = await svc.client.post("/v1/redemptions", json={"reward_id": expensive["id"]}, headers=customer)
    assert short.status_code == 409
    assert short.json()["title"] == "Insufficient points"
    assert short.json()["available"] == 50
    someone_else = await svc.client.post(
        "/v1/redemptions", json={"reward_id": reward["id"], "customer_id": "c2"}, headers=customer
    )
    assert someone_else.status_code == 403
    assert await balance(svc, m, "c1") == (50, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_cancelling_needs_staff_of_the_same_merchant(svc: ServiceHarness) -> None:
    m = merchant()
    await grant(svc, m, {"c1": 100})
    reward = await create_reward(svc, m)
    redemption = (await redeem_as(svc, m, "c1", reward["id"])).json()
    path = f"/v1/redemptions/{redemption['id']}/cancel"
    assert (await svc.client.post(path, headers=svc.auth(m, "customer", "c1"))).status_code == 403
    assert (await svc.client.post(path, headers=svc.auth(merchant(), "owner"))).status_code == 404
    assert await balance(svc, m, "c1") == (0, 0)
