"""The reliability contract (DESIGN.md §4), each part proven on the real Postgres and broker by a test
that fails without the mechanism."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from meadow_contracts import CustomerProfileUpdated, Envelope, Topic
from meadow_contracts.envelope import new_event_id
from meadow_runtime.consumer import ConsumerRunner
from meadow_runtime.db import plain_url
from meadow_runtime.inbox import claim_new
from meadow_runtime.relay import OutboxRelay
from meadow_runtime.settings import Settings
from meadow_runtime.telemetry import memory_exporter
from meadow_runtime.testing.harness import ServiceHarness, running_service
from meadow_runtime.testing.infrastructure import Infrastructure
from meadow_runtime.testing.kafka import TopicReader, eventually, produce
from testbed.service import (
    DEADLOCKING_CUSTOMER,
    DEADLOCKS_BEFORE_SUCCESS,
    FAIL_FOR_CUSTOMER,
    MIGRATIONS_DIR,
    SERVICE,
)

TOPIC = Topic.COMMERCE_CUSTOMERS.value


@pytest.fixture
def settings(infrastructure: Infrastructure) -> Settings:
    """A fresh database and fresh topics for every test: each reads its topic from the start."""
    return infrastructure.settings("testbed", MIGRATIONS_DIR)


@pytest.fixture
async def testbed(settings: Settings) -> AsyncIterator[ServiceHarness]:
    async with running_service(settings, SERVICE) as harness:
        yield harness


async def _emit(harness: ServiceHarness, customers: list[str], *, merchant: str = "m1") -> list[UUID]:
    async with harness.uow() as uow:
        ids = [
            uow.outbox.add(
                CustomerProfileUpdated(customer_id=c, city="Hangzhou"), merchant_id=merchant, subject=c
            ).id
            for c in customers
        ]
        await uow.commit()
    return ids


async def _effects(settings: Settings) -> Counter[UUID]:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        rows = await conn.fetch("SELECT event_id FROM effects")
    finally:
        await conn.close()
    return Counter(row["event_id"] for row in rows)


async def _unpublished(settings: Settings) -> int:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


async def test_a_each_event_is_published_exactly_once_with_two_relays(
    testbed: ServiceHarness, settings: Settings
) -> None:
    ids: list[UUID] = []
    for chunk in range(20):
        ids += await _emit(testbed, [f"c{chunk}-{i}" for i in range(100)])
    small_batches = settings.model_copy(update={"outbox_batch_size": 50})
    relays = [OutboxRelay(small_batches), OutboxRelay(small_batches)]
    for relay in relays:
        await relay.start()
    try:
        # Each relay pipelines its batches (claims the next while awaiting acks) beside the other.
        await asyncio.gather(*(relay.drain() for relay in relays))
    finally:
        for relay in relays:
            await relay.stop()
    assert all(relay.published > 0 for relay in relays), "both relays should have shared the work"
    assert sum(relay.published for relay in relays) == len(ids)
    async with TopicReader(settings, TOPIC) as reader:
        envelopes = await reader.wait_for(len(ids))
    assert Counter(e.id for e in envelopes) == Counter(ids)
    assert await _unpublished(settings) == 0


async def test_one_customers_events_leave_in_the_order_they_were_written(
    testbed: ServiceHarness, settings: Settings
) -> None:
    """Rows of one transaction share `created_at`; the relay must still keep their order per key."""
    earlier = await _emit(testbed, ["ordered"])
    async with testbed.uow() as uow:
        later = [
            uow.outbox.add(
                CustomerProfileUpdated(customer_id="ordered", city=f"city{i}"),
                merchant_id="m1",
                subject="ordered",
            ).id
            for i in range(40)
        ]
        await uow.commit()
    small_batches = settings.model_copy(update={"outbox_batch_size": 7})
    relay = OutboxRelay(small_batches)
    await relay.start()
    try:
        await relay.drain()
    finally:
        await relay.stop()

    async with TopicReader(settings, TOPIC) as reader:

        def ordered(records: list[ConsumerRecord[bytes, bytes]]) -> list[UUID]:
            envelopes = (Envelope.from_bytes(r.value or b"") for r in records)
            return [e.id for e in envelopes if e.subject == "ordered"]

        records = await eventually(reader.read_available, until=lambda rs: len(ordered(rs)) >= 41)
    assert ordered(records) == earlier + later


class _RelayCrashingBeforeMark(OutboxRelay):
    async def _mark_published(self, conn: asyncpg.Connection, ids: list[object]) -> None:
        raise ConnectionResetError("relay died after producing, before marking published")


async def test_b_relay_crash_after_produce_redelivers_and_the_inbox_absorbs_it(
    testbed: ServiceHarness, settings: Settings
) -> None:
    ids = await _emit(testbed, ["c1", "c2", "c3"])
    crashing = _RelayCrashingBeforeMark(settings)
    await crashing.start()
    try:
        with pytest.raises(ConnectionResetError):
            await crashing.publish_batch()
    finally:
        await crashing.stop()
    assert await _unpublished(settings) == 3, "the crash must leave the rows for the next relay"
    assert await testbed.publish_outbox() == 3

    async with TopicReader(settings, TOPIC) as reader:
        envelopes = await reader.wait_for(6)
    assert Counter(e.id for e in envelopes) == Counter(dict.fromkeys(ids, 2)), "each event was sent twice"
    await testbed.consume()
    assert await _effects(settings) == Counter(dict.fromkeys(ids, 1)), "…and applied once"


class _ConsumerCrashingBeforeOffsetCommit(ConsumerRunner):  # type: ignore[type-arg]
    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        raise ConnectionResetError("consumer died after its DB commit, before committing offsets")


async def test_c_consumer_crash_between_db_commit_and_offset_commit_applies_once(
    settings: Settings, infrastructure: Infrastructure
) -> None:
    events = [
        Envelope.wrap(
            CustomerProfileUpdated(customer_id="c1", city=f"city{i}"),
            source="t",
            merchant_id="m1",
            subject="c1",
        )
        for i in range(5)
    ]
    await produce(settings, TOPIC, *events)
    harness = ServiceHarness(settings, SERVICE)
    await harness.producer.start()
    crashing = _ConsumerCrashingBeforeOffsetCommit(
        settings, group_id="testbed", topics=[TOPIC], registry=SERVICE.handlers,
        unit_of_work=harness.uow, dlq_producer=harness.producer,
    )  # fmt: skip
    await crashing.start()
    try:
        with pytest.raises(ConnectionResetError):
            await eventually(lambda: crashing.poll_once(timeout_ms=300), until=lambda n: n > 0)
    finally:
        await crashing.stop()  # leaves without committing offsets, as a killed process would
    assert await _effects(settings) == Counter({e.id: 1 for e in events})

    async with running_service(settings, SERVICE) as restarted:
        await restarted.consume()
        assert restarted.runner is not None
        assert restarted.runner.handled == 0, "every redelivered event was a duplicate"
    await harness.stop()
    assert await _effects(settings) == Counter({e.id: 1 for e in events})


class _ConsumerLosingItsPartitionsBeforeOffsetCommit(ConsumerRunner):  # type: ignore[type-arg]
    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        raise CommitFailedError("the group rebalanced while the batch was applied")


class _ConsumerWhosePartitionsWereReassignedDuringTheBatch(ConsumerRunner):  # type: ignore[type-arg]
    """The rebalance completed before the offset commit: the batch's partitions are no longer assigned,
    and aiokafka refuses to commit for them (IllegalStateError) rather than failing the commit."""

    async def _apply(self, deliveries: Any) -> None:
        await super()._apply(deliveries)
        self._consumer.unsubscribe()
        assert not self._consumer.assignment()


@pytest.mark.parametrize(
    "losing_runner",
    [_ConsumerLosingItsPartitionsBeforeOffsetCommit, _ConsumerWhosePartitionsWereReassignedDuringTheBatch],
    ids=["commit-failed", "partitions-reassigned"],
)
async def test_c_rebalance_between_db_commit_and_offset_commit_keeps_the_consumer_going(
    settings: Settings,
    losing_runner: type[ConsumerRunner],  # type: ignore[type-arg]
) -> None:
    """A scale-out rebalance mid-batch must not kill the worker, and the re-read events apply once."""
    events = [
        Envelope.wrap(
            CustomerProfileUpdated(customer_id="c2", city=f"town{i}"),
            source="t",
            merchant_id="m1",
            subject="c2",
        )
        for i in range(4)
    ]
    await produce(settings, TOPIC, *events)
    harness = ServiceHarness(settings, SERVICE)
    await harness.producer.start()
    losing = losing_runner(
        settings, group_id="testbed", topics=[TOPIC], registry=SERVICE.handlers,
        unit_of_work=harness.uow, dlq_producer=harness.producer,
    )  # fmt: skip
    await losing.start()
    try:
        # Would raise if a failed offset commit still ended the consumer, as it used to.
        await eventually(lambda: losing.poll_once(timeout_ms=300), until=lambda n: n > 0)
    finally:
        await losing.stop()

    async with running_service(settings, SERVICE) as next_owner:
        await next_owner.consume()
        assert next_owner.runner is not None
        assert losing.handled + next_owner.runner.handled == len(events), "re-read events were skipped"
    await harness.stop()
    effects = await _effects(settings)
    assert [effects[e.id] for e in events] == [1] * len(events)


async def test_d_poison_messages_go_to_the_dlq_and_the_partition_moves_on(
    testbed: ServiceHarness, settings: Settings
) -> None:
    def profile(customer: str, **fields: object) -> Envelope:
        return Envelope(
            type=CustomerProfileUpdated.event_type, source="t", merchant_id="m1", subject="same-key",
            data={"customer_id": customer, **fields},
        )  # fmt: skip

    before = profile("before")
    invalid = profile("invalid", birth_year=1500)
    failing = profile(FAIL_FOR_CUSTOMER)
    after = profile("after")
    await produce(settings, TOPIC, before, invalid, b"{not json", failing, after)
    await testbed.consume()

    assert await _effects(settings) == Counter({before.id: 1, after.id: 1})
    async with TopicReader(settings, f"{TOPIC}.dlq") as dead:
        await eventually(dead.read_available, until=lambda records: len(records) >= 3)
    errors = [dict(r.headers)["dlq.error"].decode() for r in dead.records]
    assert any("birth_year" in e for e in errors), errors
    assert any("undecodable" in e or "invalid envelope" in e for e in errors), errors
    assert any("RuntimeError" in e for e in errors), errors
    attempts = [dict(r.headers)["dlq.attempts"] for r in dead.records]
    assert attempts.count(str(settings.consumer_max_attempts).encode()) == 1


async def test_d_an_event_undone_by_deadlocks_is_retried_past_its_attempts_and_applied_once(
    testbed: ServiceHarness, settings: Settings
) -> None:
    """More deadlocks than `consumer_max_attempts`: they say nothing of the event, which must not end in
    the DLQ."""
    assert settings.consumer_max_attempts < DEADLOCKS_BEFORE_SUCCESS
    event = Envelope(
        type=CustomerProfileUpdated.event_type, source="t", merchant_id="m1", subject="deadlocks",
        data={"customer_id": DEADLOCKING_CUSTOMER},
    )  # fmt: skip
    await produce(settings, TOPIC, event)
    await testbed.consume()
    assert (await _effects(settings))[event.id] == 1, "applied once, not dead-lettered"


async def test_e_a_rolled_back_transaction_publishes_nothing(
    testbed: ServiceHarness, settings: Settings
) -> None:
    async def write_then_fail() -> None:
        async with testbed.uow() as uow:
            ghost = CustomerProfileUpdated(customer_id="ghost", city="x")
            uow.outbox.add(ghost, merchant_id="m1", subject="ghost")
            await uow.flush()  # the row reaches the database inside the transaction…
            raise RuntimeError("…and the transaction rolls back")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    kept = await _emit(testbed, ["kept"])
    assert await testbed.publish_outbox() == 1
    async with TopicReader(settings, TOPIC) as reader:
        envelopes = await reader.wait_for(1)
        assert not await reader.read_available() or len(reader.records) == 1
    assert [e.id for e in envelopes] == kept


async def test_f_trace_context_flows_from_http_through_outbox_and_kafka_to_the_consumer(
    testbed: ServiceHarness,
) -> None:
    exporter = memory_exporter()
    assert exporter is not None
    exporter.clear()
    response = await testbed.client.post(
        "/v1/profiles", json={"customer_id": "traced", "city": "Shanghai"}, headers=testbed.auth()
    )
    assert response.status_code == 202
    await testbed.publish_outbox()
    await testbed.consume()

    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind.name == "SERVER" and "/v1/profiles" in s.name]
    consumer = [s for s in spans if s.name == "consume testbed"]
    assert server, [s.name for s in spans]
    assert consumer, [s.name for s in spans]
    assert consumer[0].context.trace_id == server[0].context.trace_id


async def test_g_inbox_claim_keeps_the_transaction_when_some_ids_are_already_handled(
    testbed: ServiceHarness,
) -> None:
    handled, fresh = [new_event_id() for _ in range(3)], [new_event_id() for _ in range(4)]
    async with testbed.uow() as uow:
        assert await claim_new(uow.session, "g", handled) == set(handled)
        await uow.commit()

    async with testbed.uow() as uow:
        earlier = await _emit_in(uow, "written before the claim")
        # One fresh id twice in the batch, old ones around it: the optimistic insert must fall back.
        batch = [handled[0], fresh[0], fresh[1], fresh[0], handled[2], fresh[2], fresh[3]]
        assert await claim_new(uow.session, "g", batch) == set(fresh)
        later = await _emit_in(uow, "written after the claim")
        await uow.commit()
    assert await testbed.publish_outbox() == 2, "the fallback must not have lost the transaction"
    async with testbed.uow() as uow:
        assert await claim_new(uow.session, "g", [*handled, *fresh]) == set()
        assert await claim_new(uow.session, "another group", handled) == set(handled)
    assert earlier != later


async def test_g_two_workers_claiming_one_event_apply_it_once(testbed: ServiceHarness) -> None:
    shared, own = new_event_id(), new_event_id()
    async with testbed.uow() as first:
        assert await claim_new(first.session, "g", [shared]) == {shared}
        async with testbed.uow() as second:
            # The second claim waits on the first transaction's row; when that commits, it is a duplicate.
            waiting = asyncio.ensure_future(claim_new(second.session, "g", [own, shared]))
            await eventually(lambda: _sessions_waiting_on_a_lock(testbed.settings), until=lambda n: n == 1)
            assert not waiting.done()
            await first.commit()
            assert await asyncio.wait_for(waiting, timeout=30) == {own}
            await second.commit()


async def _sessions_waiting_on_a_lock(settings: Settings) -> int:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    finally:
        await conn.close()


async def _emit_in(uow: Any, city: str) -> UUID:
    event = CustomerProfileUpdated(customer_id="c1", city=city)
    return uow.outbox.add(event, merchant_id="m1", subject="c1").id
