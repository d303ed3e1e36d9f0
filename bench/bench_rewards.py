"""Rewards: ledger ingest of order.paid (batched vs. one event per transaction) and the redeem API.

- ledger ingest: N `order.paid` events already on the topic → points credited (transfer with its postings,
  lot, balance, order record, `points.earned` in the outbox, inbox row) and committed, by one worker;
- naive baseline, same run: the same handler and runner with one event per transaction;
- redeem API: 50 concurrent clients redeeming over HTTP (uvicorn in-process), beside a bare FastAPI
  endpoint served and driven the same way.
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from harness import (
    BenchContext,
    Measurement,
    Stopwatch,
    consume_concurrently,
    percentile,
    rate,
)
from meadow_contracts import Envelope, OrderLine, OrderPaid, Topic, decode
from meadow_runtime.auth import issue_token
from meadow_runtime.consumer import ConsumerRunner, Delivery
from meadow_runtime.db import create_engine, create_session_factory, plain_url
from meadow_runtime.heap import worker_collector
from meadow_runtime.inbox import claim_new
from meadow_runtime.kafka import create_consumer, create_producer
from meadow_runtime.settings import Settings
from rewards.app import MIGRATIONS_DIR, SERVICE, create_app
from rewards.consumers import handlers, order_paid
from rewards.uow import RewardsUnitOfWork

ORDER = 40
MERCHANT = "bench-merchant"
CLIENTS = 50


def _settings(ctx: BenchContext, **overrides: Any) -> Settings:
    return ctx.infra.settings(
        "rewards", MIGRATIONS_DIR, kafka_session_timeout_ms=2000, kafka_heartbeat_interval_ms=300,
        kafka_rebalance_timeout_ms=2000, **overrides,
    ).for_service("rewards")  # fmt: skip


def _orders(count: int, customers: int) -> list[tuple[bytes, bytes]]:
    """(Kafka key, message) of `count` paid orders over `customers` customers, keyed as every producer keys
    them (`merchant_id:customer_id`), so one customer's orders share a partition."""
    now = datetime.now(UTC)
    events = []
    for i in range(count):
        customer = f"c{i % customers}"
        order = OrderPaid(
            order_id=f"o{i}",
            customer_id=customer,
            lines=(
                OrderLine(line_id="1", product_id="p1", category="formula", quantity=1, amount_minor=12_900),
                OrderLine(line_id="2", product_id="p2", category="diapers", quantity=2, amount_minor=8_800),
            ),
            paid_at=now,
        )
        events.append(Envelope.wrap(order, source="bench", merchant_id=MERCHANT, subject=customer))
    return [(e.key.encode(), e.to_bytes()) for e in events]


async def _prepare(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        await conn.execute(
            "INSERT INTO earn_rules (id, merchant_id, kind, name, points_per_unit) "
            "VALUES ($1, $2, 'purchase', 'spend', 1)",
            uuid4(),
            MERCHANT,
        )
    finally:
        await conn.close()
    producer = create_producer(settings, linger_ms=50)
    await producer.start()
    try:
        topic = settings.topic(Topic.COMMERCE_ORDERS.value)
        sends = [await producer.send(topic, message, key=key) for key, message in messages]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _ingest(settings: Settings, count: int, consumers: int) -> tuple[float, int, int]:
    """One worker handling `count` events with `consumers` members of the group: the seconds, the events
    handled in that time and the points credited in the database."""
    engine = create_engine(settings.database_url, plan_each_execution=True)  # as the worker's
    session_factory = create_session_factory(engine)
    dlq = create_producer(settings)
    await dlq.start()
    runners: list[ConsumerRunner[RewardsUnitOfWork]] = [
        ConsumerRunner(
            settings,
            group_id="rewards",
            topics=[Topic.COMMERCE_ORDERS.value],
            registry=handlers,
            unit_of_work=lambda: RewardsUnitOfWork(session_factory, "rewards"),
            dlq_producer=dlq,
        )
        for _ in range(consumers)
    ]
    for runner in runners:
        await runner.start()
    try:
        async with worker_collector():
            seconds, handled = await consume_concurrently(runners, count)
    finally:
        for runner in runners:
            await runner.stop()
        await dlq.stop()
        await engine.dispose()
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        credited = await conn.fetchval("SELECT coalesce(sum(points), 0) FROM balances")
    finally:
        await conn.close()
    return seconds, handled, int(credited)


async def _ingest_one_per_transaction(settings: Settings, count: int) -> tuple[float, int]:
    """The naive baseline: the same handler and inbox, but every event in its own transaction (offsets
    are still committed per fetched batch, so the figure isolates the database side)."""
    engine = create_engine(settings.database_url, plan_each_execution=True)  # as the worker's
    session_factory = create_session_factory(engine)
    consumer = create_consumer(settings, "rewards-naive", Topic.COMMERCE_ORDERS.value)
    await consumer.start()
    handled = 0
    try:
        with Stopwatch() as watch:
            while handled < count:
                batches = await consumer.getmany(timeout_ms=1000, max_records=settings.consumer_batch_size)
                for partition, records in batches.items():
                    for record in records:
                        assert record.value is not None
                        envelope = Envelope.from_bytes(record.value)
                        delivery = Delivery(
                            envelope, decode(envelope), partition.topic, record.partition, record.offset
                        )
                        async with RewardsUnitOfWork(session_factory, "rewards") as uow:
                            if await claim_new(uow.session, "rewards-naive", [envelope.id]):
                                await order_paid(uow, [delivery])
                            await uow.commit()
                        handled += 1
                    await consumer.commit({partition: records[-1].offset + 1})
    finally:
        await consumer.stop()
        await engine.dispose()
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        credited = await conn.fetchval("SELECT coalesce(sum(points), 0) FROM balances")
    finally:
        await conn.close()
    return watch.seconds, int(credited)


POINTS_PER_ORDER = 129 + 88  # the two lines of every bench order, at one point per currency unit


async def _measured_ingest(
    ctx: BenchContext, count: int, *, consumers: int | None = None, **overrides: Any
) -> tuple[float, Settings]:
    """One ledger-ingest run on its own database and topics: events/s and the settings it ran with
    (`consumers` defaults to the worker's CONSUMER_CONCURRENCY). Its database is dropped afterwards, so
    each run starts on an equal footing."""
    settings = _settings(ctx, **overrides)
    await _prepare(settings, _orders(count, customers=count // 4))
    seconds, handled, credited = await _ingest(settings, count, consumers or settings.consumer_concurrency)
    expected = count * POINTS_PER_ORDER
    assert credited == expected, f"credited {credited} points, expected {expected}"
    ctx.infra.drop_database(settings.database_url)
    return rate(handled, seconds), settings


async def _ledger_ingest(ctx: BenchContext) -> None:
    count = ctx.scale(200_000, 20_000)
    # The same workload twice: one consumer alone, then one worker as deployed (CONSUMER_CONCURRENCY
    # members of the group in one process, overlapping one batch's Python with another's transaction).
    one_rate, _ = await _measured_ingest(ctx, count, consumers=1)
    ctx.report(
        Measurement(
            "rewards.ledger_ingest.one_consumer", one_rate, "events/s", f"{count:,} order.paid, 1 consumer"
        ),
        against="raw.kafka.consume",
    )
    worker_rate, settings = await _measured_ingest(ctx, count)
    batched = ctx.report(
        Measurement(
            "rewards.ledger_ingest", worker_rate, "events/s",
            f"{count:,} order.paid, 1 worker with {settings.consumer_concurrency} consumers",
        ),
        against="raw.kafka.consume",
    )  # fmt: skip
    ctx.report(
        Measurement(
            "rewards.ledger_ingest (vs executemany)", batched.value, "events/s", "≈5 rows written per event"
        ),
        against="raw.pg.insert.executemany",
    )

    ctx.report(
        Measurement(
            "rewards.ledger_ingest (vs runtime)", batched.value, "events/s", "runner with a no-op handler"
        ),
        against="runtime.consumer",
    )

    # A worker that has caught up sees small batches: the same workload with at most 50 events a batch,
    # which is where a plan made for the batch, not a generic one, matters (meadow_runtime.db).
    small_count = ctx.scale(40_000, 4_000)
    small_rate, small_settings = await _measured_ingest(ctx, small_count, consumer_batch_size=50)
    ctx.report(
        Measurement(
            "rewards.ledger_ingest.batches_of_50", small_rate, "events/s",
            f"{small_count:,} order.paid, ≤ 50 a batch, {small_settings.consumer_concurrency} consumers",
        ),
        against="rewards.ledger_ingest",
    )  # fmt: skip

    naive_count = ctx.scale(10_000, 2_000)
    naive_settings = _settings(ctx)
    await _prepare(naive_settings, _orders(naive_count, customers=naive_count // 4))
    naive_seconds, naive_credited = await _ingest_one_per_transaction(naive_settings, naive_count)
    assert naive_credited == naive_count * POINTS_PER_ORDER
    ctx.infra.drop_database(naive_settings.database_url)
    ctx.report(
        Measurement(
            "rewards.ledger_ingest.naive", rate(naive_count, naive_seconds), "events/s",
            f"{naive_count:,} events, one transaction each",
        ),
        against="raw.pg.insert.row_per_tx",
    )  # fmt: skip
    ctx.report(
        Measurement("rewards.ledger_ingest (vs naive)", batched.value, "events/s"),
        against="rewards.ledger_ingest.naive",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # waiting for the listener to bind; uvicorn offers no event for it
        if server.started:
            break
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


async def _drive(
    url: str, path: str, bodies: list[tuple[dict[str, Any], dict[str, str]]]
) -> tuple[float, list[float], int]:
    """Send the requests from CLIENTS concurrent clients; (seconds, latencies, successes)."""
    latencies: list[float] = []
    ok = 0
    queue = list(reversed(bodies))

    async def client() -> None:
        nonlocal ok
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while queue:
                body, headers = queue.pop()
                started = time.perf_counter()
                response = await http.post(path, json=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                ok += response.status_code < 300

    with Stopwatch() as watch:
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return watch.seconds, latencies, ok


async def _redeem_api(ctx: BenchContext) -> None:
    requests = ctx.scale(5_000, 1_000)
    bare = FastAPI()

    @bare.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    server, task, url = await _serve(bare)
    try:
        seconds, latencies, _ = await _drive(url, "/echo", [({"n": i}, {}) for i in range(requests)])
    finally:
        server.should_exit = True
        await task
    ctx.report(
        Measurement(
            "rewards.redeem_api.baseline",
            rate(requests, seconds),
            "req/s",
            f"bare FastAPI, {CLIENTS} clients",
        )
    )
    ctx.report(Measurement("rewards.redeem_api.baseline p50", percentile(latencies, 50) * 1000, "ms"))
    ctx.report(Measurement("rewards.redeem_api.baseline p99", percentile(latencies, 99) * 1000, "ms"))

    settings = _settings(ctx)
    customers = [f"c{i}" for i in range(CLIENTS * 4)]
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        reward_id = uuid4()
        await conn.execute(
            "INSERT INTO catalog_rewards (id, merchant_id, name, points_price, stock) "
            "VALUES ($1, $2, 'sample', 10, NULL)",
            reward_id,
            MERCHANT,
        )
        far = datetime(2100, 1, 1, tzinfo=UTC)
        lots = [(uuid4(), MERCHANT, c, 1_000_000, 1_000_000, far, datetime.now(UTC)) for c in customers]
        await conn.copy_records_to_table(
            "lots",
            records=lots,
            columns=["id", "merchant_id", "customer_id", "points", "remaining", "expires_at", "earned_at"],
        )
        await conn.copy_records_to_table(
            "balances",
            records=[(MERCHANT, c, 1_000_000) for c in customers],
            columns=["merchant_id", "customer_id", "points"],
        )
    finally:
        await conn.close()
    tokens = {
        c: issue_token(settings, merchant_id=MERCHANT, subject=c, role="customer", customer_id=c)
        for c in customers
    }
    bodies = [
        ({"reward_id": str(reward_id)}, {"Authorization": f"Bearer {tokens[customers[i % len(customers)]]}"})
        for i in range(requests)
    ]
    server, task, url = await _serve(
        create_app(settings.model_copy(update={"database_pool_size": CLIENTS // 2}))
    )
    try:
        seconds, latencies, ok = await _drive(url, "/v1/redemptions", bodies)
    finally:
        server.should_exit = True
        await task
    assert ok == requests, f"{requests - ok} redemptions failed"
    ctx.report(
        Measurement(
            "rewards.redeem_api",
            rate(requests, seconds),
            "req/s",
            f"{CLIENTS} clients, {len(customers)} customers",
        ),
        against="rewards.redeem_api.baseline",
    )
    ctx.report(
        Measurement("rewards.redeem_api p50", percentile(latencies, 50) * 1000, "ms"),
        against="rewards.redeem_api.baseline p50",
    )
    ctx.report(
        Measurement("rewards.redeem_api p99", percentile(latencies, 99) * 1000, "ms"),
        against="rewards.redeem_api.baseline p99",
    )


async def run(ctx: BenchContext) -> None:
    _ = SERVICE  # the worker's definition is what the runner above mirrors
    await _ledger_ingest(ctx)
    await _redeem_api(ctx)
