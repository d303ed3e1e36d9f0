"""What every API promises integrators: problem+json errors naming the field, JWT tenancy, idempotency keys,
readiness; and the operator tools: replay and DLQ re-drive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from meadow_contracts import CustomerProfileUpdated, Envelope, Topic
from meadow_runtime.db import plain_url
from meadow_runtime.dlq import redrive
from meadow_runtime.relay import replay
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness, running_service
from meadow_runtime.testing.infrastructure import Infrastructure
from meadow_runtime.testing.kafka import TopicReader, eventually, produce
from testbed.service import FAIL_FOR_CUSTOMER, MIGRATIONS_DIR, SERVICE, UNSERVED_CITY

TOPIC = Topic.COMMERCE_CUSTOMERS.value
NOTE = {"customer_id": "c1", "city": "Suzhou", "birth_year": 1990}


@pytest.fixture(scope="module")
def settings(infrastructure: Infrastructure) -> Settings:
    return infrastructure.settings("testbed", MIGRATIONS_DIR)


@pytest.fixture
async def testbed(settings: Settings) -> AsyncIterator[ServiceHarness]:
    async with running_service(settings, SERVICE) as harness:
        yield harness


async def _outbox_count(settings: Settings, merchant: str) -> int:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM outbox WHERE payload->>'merchant_id' = $1", merchant)
        )
    finally:
        await conn.close()


async def test_invalid_body_is_a_422_problem_naming_the_field_and_writes_nothing(
    testbed: ServiceHarness, settings: Settings
) -> None:
    response = await testbed.client.post(
        "/v1/notes", json={**NOTE, "birth_year": 1500}, headers=testbed.auth("m-invalid")
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert [e["pointer"] for e in problem["errors"]] == ["/birth_year"]
    assert await _outbox_count(settings, "m-invalid") == 0


async def test_missing_or_forged_tokens_are_401_problems(testbed: ServiceHarness) -> None:
    missing = await testbed.client.post("/v1/notes", json=NOTE)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    other_key = Settings(jwt_secret="someone-elses-secret-entirely-and-long-enough")  # type: ignore[arg-type]
    from meadow_runtime.auth import issue_token

    forged = issue_token(other_key, merchant_id="m1", subject="x", role="owner")
    response = await testbed.client.post(
        "/v1/notes", json=NOTE, headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401


async def test_the_event_carries_the_tokens_merchant_not_one_from_the_body(
    testbed: ServiceHarness, settings: Settings
) -> None:
    response = await testbed.client.post(
        "/v1/notes", json={**NOTE, "merchant_id": "m-victim"}, headers=testbed.auth("m-caller")
    )
    assert response.status_code == 201
    assert await _outbox_count(settings, "m-caller") == 1
    assert await _outbox_count(settings, "m-victim") == 0


async def test_idempotency_key_replays_the_first_response_and_refuses_another_body(
    testbed: ServiceHarness, settings: Settings
) -> None:
    headers = {**testbed.auth("m-idem"), "Idempotency-Key": "key-1"}
    first, second = await asyncio.gather(
        testbed.client.post("/v1/notes", json=NOTE, headers=headers),
        testbed.client.post("/v1/notes", json=NOTE, headers=headers),
    )
    assert {first.status_code, second.status_code} == {201}
    assert first.json() == second.json()
    third = await testbed.client.post("/v1/notes", json=NOTE, headers=headers)
    assert third.json() == first.json()
    assert third.headers.get("idempotent-replayed") == "true"
    assert await _outbox_count(settings, "m-idem") == 1

    conflict = await testbed.client.post("/v1/notes", json={**NOTE, "city": "Wuxi"}, headers=headers)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    other_merchant = await testbed.client.post(
        "/v1/notes", json=NOTE, headers={**testbed.auth("m-other"), "Idempotency-Key": "key-1"}
    )
    assert other_merchant.status_code == 201, "keys are scoped to the merchant"
    assert await _outbox_count(settings, "m-idem") == 1


async def test_an_idempotency_key_belongs_to_its_caller(testbed: ServiceHarness, settings: Settings) -> None:
    """Two customers of one merchant who pick the same key and send the same body make two requests:
    neither is answered with the other's stored response."""
    first, second = [
        await testbed.client.post(
            "/v1/notes",
            json=NOTE,
            headers={**testbed.auth("m-callers", "customer", customer), "Idempotency-Key": "k-1"},
        )
        for customer in ("c-a", "c-b")
    ]
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() != second.json()
    assert "idempotent-replayed" not in second.headers
    assert await _outbox_count(settings, "m-callers") == 2


async def test_a_value_postgres_cannot_store_is_a_422_that_writes_nothing(
    testbed: ServiceHarness, settings: Settings
) -> None:
    """A NUL character passes the model but not Postgres (the event's jsonb refuses it)."""
    response = await testbed.client.post(
        "/v1/notes", json={**NOTE, "city": "Su\u0000zhou"}, headers=testbed.auth("m-nul")
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "A value cannot be stored"
    assert await _outbox_count(settings, "m-nul") == 0


async def test_a_lone_surrogate_escape_is_a_422_and_a_pair_is_a_character(
    testbed: ServiceHarness, settings: Settings
) -> None:
    """`json` decodes `"\\ud800"` to a str that UTF-8 cannot encode, and a plain `str` field takes it:
    writing the event to the outbox then failed, as a 500. A well-formed pair is one character."""
    headers = {**testbed.auth("m-surrogate"), "content-type": "application/json"}
    lone = b'{"customer_id": "c-1", "city": "Su\\ud800zhou"}'
    response = await testbed.client.post("/v1/profiles", content=lone, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == "json_invalid"
    assert await _outbox_count(settings, "m-surrogate") == 0
    paired = lone.replace(b"\\ud800", b"\\ud83c\\udf3f")
    response = await testbed.client.post("/v1/profiles", content=paired, headers=headers)
    assert response.status_code == 202, response.text
    assert await _outbox_count(settings, "m-surrogate") == 1


async def test_a_failed_request_frees_its_key_and_leaves_nothing_behind(
    testbed: ServiceHarness, settings: Settings
) -> None:
    headers = {**testbed.auth("m-retry"), "Idempotency-Key": "key-2"}
    failed = await testbed.client.post("/v1/notes", json={**NOTE, "city": UNSERVED_CITY}, headers=headers)
    assert failed.status_code == 422
    assert failed.json()["pointer"] == "/city"
    assert await _outbox_count(settings, "m-retry") == 0, "the event written before the failure rolled back"
    corrected = await testbed.client.post("/v1/notes", json={**NOTE, "city": "Ningbo"}, headers=headers)
    assert corrected.status_code == 201, "the failed attempt's claim on the key rolled back with it"


async def test_readyz_reports_database_and_broker(testbed: ServiceHarness) -> None:
    response = await testbed.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert (await testbed.client.get("/healthz")).status_code == 200
    metrics = await testbed.client.get("/metrics")
    assert "meadow_http_requests_total" in metrics.text


async def test_replay_republishes_a_time_range(testbed: ServiceHarness, settings: Settings) -> None:
    await testbed.publish_outbox()
    started = datetime.now(UTC) - timedelta(seconds=1)
    async with testbed.uow() as uow:
        event = CustomerProfileUpdated(customer_id="replayed", city="Xiamen")
        replayed = uow.outbox.add(event, merchant_id="m-replay", subject="replayed")
        await uow.commit()
    assert await testbed.publish_outbox() == 1
    assert await replay(settings, started, datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await testbed.publish_outbox() == 1
    async with TopicReader(settings, TOPIC) as reader:
        await eventually(
            reader.read_available,
            until=lambda _: [e.id for e in reader.envelopes()].count(replayed.id) == 2,
        )


async def test_dead_letters_can_be_redriven_once_the_cause_is_fixed(
    testbed: ServiceHarness, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await testbed.consume()  # whatever earlier tests left on the topic
    poisoned = Envelope.wrap(
        CustomerProfileUpdated(customer_id=FAIL_FOR_CUSTOMER, city="x"),
        source="t",
        merchant_id="m",
        subject="p",
    )
    await produce(settings, TOPIC, poisoned)
    await testbed.consume()
    assert testbed.runner is not None
    assert testbed.runner.dead_lettered >= 1

    monkeypatch.setattr("testbed.service.FAIL_FOR_CUSTOMER", "nobody-any-more")  # the bug is fixed
    assert await redrive(settings, TOPIC) == 1
    await testbed.consume()
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        applied = await conn.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", poisoned.id)
    finally:
        await conn.close()
    assert applied == 1


async def test_a_dropped_database_is_gone_and_its_connections_with_it(infrastructure: Infrastructure) -> None:
    url = infrastructure.fresh_database(MIGRATIONS_DIR, stem="dropped")
    name = url.rsplit("/", 1)[1]
    held = await asyncpg.connect(plain_url(url))  # a connection left open does not keep it alive
    try:
        infrastructure.drop_database(url)
        assert held.is_closed() or await _connection_lost(held)
    finally:
        await held.close()
    admin = await asyncpg.connect(plain_url(infrastructure.admin_url))
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await admin.close()


async def _connection_lost(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError, OSError):
        return True
    return False
