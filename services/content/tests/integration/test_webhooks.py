"""Webhook delivery to a real local HTTP server: signed, retried with backoff, manually retried."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from content.domain.webhooks import MAX_ATTEMPTS, SIGNATURE_HEADER, retry_delay, verify
from content.publisher.service import publish_all_due
from content.webhooks.service import deliver_due
from meadow_runtime.testing.harness import ServiceHarness

from .helpers import Receiver, make_group, merchant


@pytest.fixture(autouse=True)
def local_receivers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The receiver listens on plain http at 127.0.0.1: the operator escape hatches of a dev rig.
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver.listening() as found:
        yield found


async def register(svc: ServiceHarness, m: str, url: str) -> dict[str, Any]:
    response = await svc.client.post("/v1/webhooks", json={"url": url}, headers=svc.auth(m))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def publish_one(svc: ServiceHarness, m: str) -> str:
    group = await make_group(svc, m)
    response = await svc.client.post(
        "/v1/posts",
        json={"kind": "text", "title": "上新", "group_ids": [str(group)], "schedule": {"kind": "now"}},
        headers=svc.auth(m),
    )
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))
    post_id: str = response.json()["id"]
    return post_id


async def test_signed_delivery_retries_with_backoff_until_accepted(
    svc: ServiceHarness, receiver: Receiver
) -> None:
    m = merchant()
    endpoint = await register(svc, m, receiver.url)
    post_id = await publish_one(svc, m)
    receiver.statuses = [500, 503, 200]
    now = datetime.now(UTC) + timedelta(seconds=2)
    async with httpx.AsyncClient(timeout=5) as client:
        assert await deliver_due(svc.uow, client, now) == 1
        assert await deliver_due(svc.uow, client, now + timedelta(seconds=9)) == 0  # backing off 10 s
        assert await deliver_due(svc.uow, client, now + timedelta(seconds=11)) == 1
        assert await deliver_due(svc.uow, client, now + timedelta(seconds=11 + 19)) == 0  # then 20 s
        assert await deliver_due(svc.uow, client, now + timedelta(seconds=11 + 21)) == 1
        assert await deliver_due(svc.uow, client, now + timedelta(hours=2)) == 0  # delivered: never again

    assert len(receiver.requests) == 3
    for headers, body in receiver.requests:
        timestamp = int(headers[SIGNATURE_HEADER.lower()].split(",")[0].removeprefix("t="))
        assert verify(endpoint["secret"], headers[SIGNATURE_HEADER.lower()], body, now=timestamp)
        assert not verify("wrong-secret", headers[SIGNATURE_HEADER.lower()], body, now=timestamp)
        assert json.loads(body)["data"]["post_id"] == post_id
    assert len({h["meadow-delivery-id"] for h, _ in receiver.requests}) == 1  # one delivery, three attempts

    log = (await svc.client.get("/v1/webhooks/deliveries", headers=svc.auth(m))).json()["items"]
    assert [(d["status"], d["attempts"]) for d in log] == [("succeeded", 3)]
    detail = (await svc.client.get(f"/v1/webhooks/deliveries/{log[0]['id']}", headers=svc.auth(m))).json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 503, 200]
    again = await svc.client.post(f"/v1/webhooks/deliveries/{log[0]['id']}/retry", headers=svc.auth(m))
    assert again.status_code == 409


async def test_unreachable_endpoint_is_logged_and_manual_retry_sends_now(
    svc: ServiceHarness, receiver: Receiver
) -> None:
    m = merchant()
    unreachable = await register(svc, m, "http://127.0.0.1:9/unreachable")  # discard port: connection refused
    await register(svc, m, receiver.url)
    await publish_one(svc, m)
    receiver.statuses = [500]
    now = datetime.now(UTC) + timedelta(seconds=2)
    async with httpx.AsyncClient(timeout=5) as client:
        assert await deliver_due(svc.uow, client, now) == 2
        log = (await svc.client.get("/v1/webhooks/deliveries", headers=svc.auth(m))).json()["items"]
        assert {d["status"] for d in log} == {"pending"}
        assert all(d["last_error"] for d in log)
        waiting = next(d for d in log if d["last_status_code"] == 500)

        retried = await svc.client.post(f"/v1/webhooks/deliveries/{waiting['id']}/retry", headers=svc.auth(m))
        assert retried.status_code == 200
        # Due again at once, without waiting out the backoff; only the retried delivery goes.
        assert await deliver_due(svc.uow, client, datetime.now(UTC) + timedelta(seconds=1)) == 1
        final = (await svc.client.get(f"/v1/webhooks/deliveries/{waiting['id']}", headers=svc.auth(m))).json()
        assert final["status"] == "succeeded"
        assert final["attempts"] == 2

        # Deactivating an endpoint pauses its pending deliveries.
        removed = await svc.client.delete(f"/v1/webhooks/{unreachable['id']}", headers=svc.auth(m))
        assert removed.status_code == 204
        assert await deliver_due(svc.uow, client, datetime.now(UTC) + timedelta(days=1)) == 0


async def test_other_merchants_events_are_not_delivered(svc: ServiceHarness, receiver: Receiver) -> None:
    m, other = merchant(), merchant()
    await register(svc, m, receiver.url)
    await publish_one(svc, other)
    async with httpx.AsyncClient(timeout=5) as client:
        await deliver_due(svc.uow, client, datetime.now(UTC) + timedelta(seconds=2))
    assert (await svc.client.get("/v1/webhooks/deliveries", headers=svc.auth(m))).json()["items"] == []
    assert (await svc.client.get("/v1/webhooks/deliveries", headers=svc.auth(other))).json()["items"] == []


async def test_a_delivery_gives_up_after_the_last_attempt_and_can_be_retried(
    svc: ServiceHarness, receiver: Receiver
) -> None:
    m = merchant()
    await register(svc, m, receiver.url)
    await publish_one(svc, m)
    receiver.statuses = [500] * MAX_ATTEMPTS
    moment = datetime.now(UTC) + timedelta(seconds=2)
    async with httpx.AsyncClient(timeout=5) as client:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert await deliver_due(svc.uow, client, moment) == 1
            moment += retry_delay(attempt) + timedelta(seconds=1)
        assert await deliver_due(svc.uow, client, moment + timedelta(days=1)) == 0
        log = (await svc.client.get("/v1/webhooks/deliveries", headers=svc.auth(m))).json()["items"]
        assert [(d["status"], d["attempts"]) for d in log] == [("failed", MAX_ATTEMPTS)]
        retried = await svc.client.post(f"/v1/webhooks/deliveries/{log[0]['id']}/retry", headers=svc.auth(m))
        assert retried.json()["status"] == "pending"
        assert await deliver_due(svc.uow, client, datetime.now(UTC) + timedelta(seconds=1)) == 1
    final = (await svc.client.get(f"/v1/webhooks/deliveries/{log[0]['id']}", headers=svc.auth(m))).json()
    assert final["status"] == "succeeded"
    assert len(final["attempt_log"]) == MAX_ATTEMPTS + 1
