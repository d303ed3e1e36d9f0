from collections.abc import AsyncIterator
from typing import Any

import pytest

from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness, running_service
from membership.app import MIGRATIONS_DIR, SERVICE


@pytest.fixture(scope="module")
def settings(infrastructure: Any) -> Settings:
    settings: Settings = infrastructure.settings("membership", MIGRATIONS_DIR, database_pool_size=20)
    return settings


@pytest.fixture(scope="module")
async def svc(settings: Settings) -> AsyncIterator[ServiceHarness]:
    # One running service per module (fresh database and topics); tests use their own groups and customers.
    async with running_service(settings, SERVICE) as harness:
        yield harness


@pytest.fixture(scope="module")
def owner(svc: ServiceHarness) -> dict[str, str]:
    return svc.auth("m1", "owner")


@pytest.fixture(scope="module")
def create_group(svc: ServiceHarness, owner: dict[str, str]) -> Any:
    async def create(**fields: Any) -> dict[str, Any]:
        body = {"name": "奶粉老客群", **fields}
        response = await svc.client.post("/v1/groups", json=body, headers=owner)
        assert response.status_code == 201, response.text
        group: dict[str, Any] = response.json()
        return group

    return create


@pytest.fixture(scope="module")
def join(svc: ServiceHarness) -> Any:
    async def join(group_id: str, customer_id: str, merchant_id: str = "m1") -> Any:
        return await svc.client.post(
            f"/v1/groups/{group_id}/members",
            json={"customer_id": customer_id},
            headers=svc.auth(merchant_id, "customer", customer_id),
        )

    return join
