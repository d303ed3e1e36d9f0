"""Verified tokens are remembered per app until they expire: never longer, never for a bad token."""

from typing import Any

from meadow_runtime.auth import issue_token
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import eventually


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_remembered_token_stops_working_when_it_expires(
    svc: ServiceHarness, create_group: Any
) -> None:
    group = await create_group()
    token = issue_token(
        svc.settings, merchant_id="m1", subject="short", role="customer", customer_id="short", ttl_seconds=2
    )

    async def eligibility() -> int:
        response = await svc.client.get(
            "/v1/eligibility", params={"customer_id": "short"}, headers=_bearer(token)
        )
        return response.status_code

    assert await eligibility() == 200
    assert await eligibility() == 200  # now remembered
    assert await eventually(eligibility, until=lambda status: status == 401, timeout=10) == 401
    joined = await svc.client.post(
        f"/v1/groups/{group['id']}/members", json={"customer_id": "short"}, headers=_bearer(token)
    )
    assert joined.status_code == 401
    assert joined.headers["content-type"].startswith("application/problem+json")


async def test_a_token_that_fails_verification_is_refused_every_time(
    svc: ServiceHarness, create_group: Any
) -> None:
    group = await create_group()
    good = issue_token(svc.settings, merchant_id="m1", subject="shop", role="service")
    header, payload, signature = good.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    expired = issue_token(svc.settings, merchant_id="m1", subject="shop", role="service", ttl_seconds=-5)
    path = f"/v1/groups/{group['id']}/members"
    assert (await svc.client.post(path, json={"customer_id": "tk"}, headers=_bearer(good))).status_code == 200
    for bad in (forged, expired, forged, expired, "not-a-jwt"):
        refused = await svc.client.post(path, json={"customer_id": "tk-bad"}, headers=_bearer(bad))
        assert refused.status_code == 401, refused.text
    anonymous = await svc.client.post(path, json={"customer_id": "tk-bad"})
    assert anonymous.status_code == 401
