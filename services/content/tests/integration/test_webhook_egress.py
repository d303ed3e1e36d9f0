"""The SSRF guard on webhooks: internal URLs refused at registration, internal addresses at delivery time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from content.publisher.service import publish_all_due
from content.webhooks.service import deliver_due
from meadow_runtime.testing.harness import ServiceHarness

from .helpers import Receiver, make_group, merchant


@pytest.fixture(autouse=True)
def production_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_ALLOW_HTTP", raising=False)
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", raising=False)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver.listening() as found:
        yield found


async def publish_one(svc: ServiceHarness, m: str) -> None:
    group = await make_group(svc, m)
    response = await svc.client.post(
        "/v1/posts",
        json={"kind": "text", "title": "上新", "group_ids": [str(group)], "schedule": {"kind": "now"}},
        headers=svc.auth(m),
    )
    assert response.status_code == 201, response.text
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))


async def deliveries(svc: ServiceHarness, m: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await svc.client.get("/v1/webhooks/deliveries", headers=svc.auth(m))
    ).json()["items"]
    return items


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.7:8443/hook",
        "https://169.254.169.254/latest/meta-data/iam/",
        "https://[::1]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://user:secret@hooks.example.com/hook",
        "http://hooks.example.com/hook",
    ],
)
async def test_internal_or_unsafe_urls_are_refused_at_registration(svc: ServiceHarness, url: str) -> None:
    m = merchant()
    response = await svc.client.post("/v1/webhooks", json={"url": url}, headers=svc.auth(m))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in response.json()["errors"]] == ["/url"]
    assert (await svc.client.get("/v1/webhooks", headers=svc.auth(m))).json()["items"] == []


async def test_a_public_https_url_is_accepted(svc: ServiceHarness) -> None:
    m = merchant()
    response = await svc.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/meadow"}, headers=svc.auth(m)
    )
    assert response.status_code == 201, response.text


async def test_allowing_http_does_not_allow_private_addresses(
    svc: ServiceHarness, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    m = merchant()
    response = await svc.client.post("/v1/webhooks", json={"url": receiver.url}, headers=svc.auth(m))
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/url"


async def test_a_name_resolving_to_loopback_is_refused_at_delivery_and_fails_once(
    svc: ServiceHarness, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")  # http only: private networks stay blocked
    m = merchant()
    registered = await svc.client.post(
        "/v1/webhooks", json={"url": f"http://localhost:{receiver.port}/hook"}, headers=svc.auth(m)
    )
    assert registered.status_code == 201, registered.text  # a name passes registration…
    await publish_one(svc, m)
    now = datetime.now(UTC) + timedelta(seconds=2)
    async with httpx.AsyncClient(timeout=5) as client:
        assert await deliver_due(svc.uow, client, now) == 1
        # …but its loopback address is refused when sending: a permanent failure, not a retry loop.
        assert await deliver_due(svc.uow, client, now + timedelta(hours=2)) == 0
    assert receiver.requests == []
    [delivery] = await deliveries(svc, m)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 1, None)
    assert "refused" in delivery["last_error"]
    assert "loopback" in delivery["last_error"]
    detail = (await svc.client.get(f"/v1/webhooks/deliveries/{delivery['id']}", headers=svc.auth(m))).json()
    assert [a["error"] for a in detail["attempt_log"]] == [delivery["last_error"]]


async def test_with_the_escape_hatch_a_name_is_pinned_to_its_address_and_keeps_its_host_header(
    svc: ServiceHarness, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    m = merchant()
    url = f"http://localhost:{receiver.port}/hook"
    assert (await svc.client.post("/v1/webhooks", json={"url": url}, headers=svc.auth(m))).status_code == 201
    await publish_one(svc, m)
    async with httpx.AsyncClient(timeout=5) as client:
        assert await deliver_due(svc.uow, client, datetime.now(UTC) + timedelta(seconds=2)) == 1
    [(headers, _)] = receiver.requests
    assert headers["host"] == f"localhost:{receiver.port}"
    assert [d["status"] for d in await deliveries(svc, m)] == ["succeeded"]


async def test_redirects_are_not_followed(svc: ServiceHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    m = merchant()
    async with Receiver.listening() as first, Receiver.listening() as elsewhere:
        first.statuses, first.location = [307], elsewhere.url
        assert (
            await svc.client.post("/v1/webhooks", json={"url": first.url}, headers=svc.auth(m))
        ).status_code == 201
        await publish_one(svc, m)
        # A client that would follow redirects on its own still does not: the delivery forbids it.
        async with httpx.AsyncClient(timeout=5, follow_redirects=True) as client:
            assert await deliver_due(svc.uow, client, datetime.now(UTC) + timedelta(seconds=2)) == 1
        assert len(first.requests) == 1
        assert elsewhere.requests == []
    [delivery] = await deliveries(svc, m)
    assert (delivery["status"], delivery["last_status_code"]) == ("pending", 307)
