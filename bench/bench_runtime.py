"""Outbox relay and consumer runner throughput (issue 3's goals: ≥ 20,000 events/s each on 2 cores).

- relay: N events already committed to the outbox → all produced (acks=all) and marked published;
- consumer: N events already on the topic → all handled, inbox rows written, offsets committed, with a
  trivial handler, so the figure is the runner's own cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import create_engine

from harness import BenchContext, Measurement, Stopwatch, rate
from meadow_contracts import CustomerProfileUpdated, Envelope, Topic
from meadow_runtime.consumer import ConsumerRunner, Delivery, HandlerRegistry
from meadow_runtime.db import create_engine as create_async_engine
from meadow_runtime.db import create_session_factory, plain_url, psycopg_url
from meadow_runtime.heap import worker_collector
from meadow_runtime.kafka import create_producer
from meadow_runtime.relay import OutboxRelay
from meadow_runtime.settings import Settings
from meadow_runtime.tables import runtime_metadata
from meadow_runtime.uow import UnitOfWork

ORDER = 10
TOPIC = Topic.COMMERCE_CUSTOMERS.value


def _envelopes(count: int) -> list[Envelope]:
    return [
        Envelope.wrap(
            CustomerProfileUpdated(customer_id=f"c{i}", city="Hangzhou", channel="tmall"),
            source="bench",
            merchant_id=f"m{i % 16}",
            subject=f"c{i}",
        )
        for i in range(count)
    ]


def _settings(ctx: BenchContext) -> Settings:
    database_url = ctx.infra.fresh_database(None, stem="bench_runtime")
    engine = create_engine(psycopg_url(database_url))
    runtime_metadata().create_all(engine)
    engine.dispose()
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=ctx.infra.bootstrap_servers,
        kafka_topic_prefix=ctx.infra.fresh_topics([TOPIC, f"{TOPIC}.dlq"]),
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=300,
        kafka_rebalance_timeout_ms=2000,
        service_name="bench",
    )


async def _relay(ctx: BenchContext, settings: Settings, count: int) -> None:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        rows = [(e.id, TOPIC, e.key, e.type, e.model_dump_json(), "{}") for e in _envelopes(count)]
        await conn.copy_records_to_table(
            "outbox",
            records=rows,
            columns=["id", "aggregatetype", "aggregateid", "type", "payload", "headers"],
        )
    finally:
        await conn.close()
    relay = OutboxRelay(settings)
    await relay.start()
    try:
        with Stopwatch() as watch:
            await relay.drain()
    finally:
        await relay.stop()
    assert relay.published == count
    ctx.report(
        Measurement(
            "runtime.relay",
            rate(count, watch.seconds),
            "events/s",
            f"SKIP LOCKED batches of {settings.outbox_batch_size:,}, acks=all",
        ),
        against="raw.kafka.produce",
    )


async def _consumer(ctx: BenchContext, settings: Settings, count: int) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        sends = [
            await producer.send(settings.topic(TOPIC), e.to_bytes(), key=e.key.encode())
            for e in _envelopes(count)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    registry = HandlerRegistry()

    @registry.on(CustomerProfileUpdated)
    async def trivial(uow: Any, deliveries: Sequence[Delivery[CustomerProfileUpdated]]) -> None:
        return None

    engine = create_async_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    dlq = create_producer(settings)
    await dlq.start()
    runner: ConsumerRunner[UnitOfWork] = ConsumerRunner(
        settings,
        group_id="bench",
        topics=[TOPIC],
        registry=registry,
        unit_of_work=lambda: UnitOfWork(session_factory, "bench"),
        dlq_producer=dlq,
    )
    await runner.start()
    try:
        await runner.wait_until_assigned()
        async with worker_collector():
            with Stopwatch() as watch:
                while runner.handled < count:
                    await runner.poll_once(timeout_ms=1000)
    finally:
        await runner.stop()
        await dlq.stop()
        await engine.dispose()
    ctx.report(
        Measurement(
            "runtime.consumer", rate(count, watch.seconds), "events/s", "inbox + offsets, trivial handler"
        ),
        against="raw.kafka.consume",
    )
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM inbox") == count
    finally:
        await conn.close()


async def run(ctx: BenchContext) -> None:
    count = ctx.scale(200_000, 20_000)
    settings = _settings(ctx)
    await _relay(ctx, settings, count)
    await _consumer(ctx, _settings(ctx), count)
