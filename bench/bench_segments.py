"""Segments: full recompute of a 3-clause rule over 1,000,000 customers / 5,000,000 orders, and
incremental evaluation through the consumer with 50 active segments (events/s per worker).

Data is generated inside Postgres with generate_series (not timed). Figures are printed beside the raw
limits measured earlier in the same run.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import text

from harness import (
    BenchContext,
    CpuMeter,
    Measurement,
    Stopwatch,
    consume_concurrently,
    rate,
)
from meadow_contracts import CustomerProfileUpdated, Envelope, OrderLine, OrderPaid
from meadow_runtime.consumer import ConsumerRunner
from meadow_runtime.heap import worker_collector
from meadow_runtime.kafka import create_producer
from meadow_runtime.testing.harness import running_service
from segments.app import MIGRATIONS_DIR, SERVICE
from segments.definitions.repository import StoredSegment
from segments.definitions.service import matching_customers, recompute
from segments.domain.rules import parse_rule

MERCHANT = "bench"
CATEGORIES = ["formula", "diapers", "toys", "clothes", "food"]
THREE_CLAUSES = {
    "kind": "all",
    "all": [
        {"kind": "profile", "field": "gender", "op": "eq", "value": "female"},
        {"kind": "purchased", "category": "formula", "within_days": 180, "min_count": 2},
        {"kind": "not", "not": {"kind": "lifecycle", "stage": "problem"}},
    ],
}

GENERATE = (
    """
    INSERT INTO customers (merchant_id, customer_id, gender, birth_year, city, channel, lifecycle)
    SELECT 'bench', 'c' || i, (ARRAY['female', 'male', 'unknown'])[1 + i % 3], 1960 + i % 50,
           (ARRAY['sh', 'bj', 'gz', 'sz'])[1 + i % 4], (ARRAY['tmall', 'jd', 'douyin'])[1 + i % 3],
           (ARRAY['new', 'repurchase', 'non_repurchase', 'problem'])[1 + i % 4]
    FROM generate_series(1, :customers) AS i
    """,
    """
    INSERT INTO order_lines
        (merchant_id, order_id, line_id, customer_id, product_id, category, amount_minor, paid_at)
    SELECT 'bench', 'o' || j, 'l1', 'c' || (1 + (j * 7919) % :customers), 'p' || (j % 500),
           (ARRAY['formula', 'diapers', 'toys', 'clothes', 'food'])[1 + (j / 7) % 5], (j * 104729) % 50000,
           now() - make_interval(days => CAST(j % 365 AS int))
    FROM generate_series(CAST(1 AS bigint), :orders) AS j
    """,
)


async def _recompute(ctx: BenchContext) -> None:
    customers, orders = ctx.scale(1_000_000, 50_000), ctx.scale(5_000_000, 250_000)
    settings = ctx.infra.settings("segments", MIGRATIONS_DIR)
    async with running_service(settings, SERVICE) as svc:
        async with svc.uow() as uow:
            for statement in GENERATE:
                await uow.session.execute(text(statement), {"customers": customers, "orders": orders})
            await uow.commit()
        async with svc.engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM ANALYZE customers"))
            await conn.execute(text("VACUUM ANALYZE order_lines"))
        rule = parse_rule(THREE_CLAUSES)
        now = datetime.now(UTC)
        async with svc.uow() as uow:
            with Stopwatch() as query:
                matched = await matching_customers(uow, MERCHANT, rule, now)
        note = f"{customers:,} customers, {orders:,} orders, {len(matched):,} match; goal < 10 s"
        ctx.report(Measurement("segments.recompute.query", query.seconds, "s", note))
        ctx.report(
            Measurement("segments.recompute.query.rate", rate(customers, query.seconds), "customers/s"),
            against="raw.pg.insert.copy",
        )
        segment = StoredSegment(
            id=uuid4(),
            merchant_id=MERCHANT,
            key="formula-moms",
            name="Formula moms",
            description="",
            rule=THREE_CLAUSES,
            version=1,
            created_at=now,
            updated_at=now,
        )
        async with svc.uow() as uow:
            await uow.definitions.add(segment)
            with Stopwatch() as first:
                result = await recompute(uow, segment, now)
                await uow.commit()
        ctx.report(
            Measurement(
                "segments.recompute.first_save",
                first.seconds,
                "s",
                f"{result.entered:,} memberships + segment.entered events written in one transaction",
            )
        )
        async with svc.uow() as uow:
            with Stopwatch() as again:
                result = await recompute(uow, segment, now)
                await uow.commit()
        ctx.report(
            Measurement("segments.recompute.unchanged", again.seconds, "s", f"{result.entered} changes")
        )
    ctx.infra.drop_database(settings.database_url)  # its pages would otherwise weigh on the next runs


def _segment_rules(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    rules: list[dict[str, Any]] = []
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        shapes: list[dict[str, Any]] = [
            {
                "kind": "purchased",
                "category": category,
                "within_days": rng.choice([30, 90, 365]),
                "min_count": 2,
            },
            {"kind": "purchased", "category": category, "min_amount": rng.randint(1, 20) * 1000},
            {
                "kind": "all",
                "all": [
                    {"kind": "profile", "field": "gender", "op": "eq", "value": "female"},
                    {"kind": "purchased", "product_id": f"p{rng.randint(0, 50)}"},
                ],
            },
            {
                "kind": "any",
                "any": [
                    {"kind": "lifecycle", "stage": "repurchase"},
                    {"kind": "rfm", "score": "m", "op": "gte", "value": 4},
                ],
            },
            {"kind": "not", "not": {"kind": "purchased", "category": category, "within_days": 30}},
        ]
        rules.append(shapes[i % len(shapes)])
    return rules


async def _incremental(ctx: BenchContext, consumers: int | None) -> None:
    """One worker with `consumers` members of the group in one process (None: as many as the deployed
    worker runs, CONSUMER_CONCURRENCY), each with its own partitions and transactions."""
    events, customers = ctx.scale(100_000, 10_000), ctx.scale(20_000, 2_000)
    settings = ctx.infra.settings("segments", MIGRATIONS_DIR, consumer_batch_size=1000)
    consumers = consumers or settings.consumer_concurrency
    label = ".one_consumer" if consumers == 1 else ""
    # 50 segments saved, then three timed phases: new customers' orders, as many orders again of the same
    # customers, then profile changes no segment reads; the collector as `meadow worker` runs it
    async with (
        running_service(settings, SERVICE) as svc,
        _worker_consumers(svc, consumers) as runners,
        worker_collector(),
    ):
        async with svc.uow() as uow:
            now = datetime.now(UTC)
            for i, raw in enumerate(_segment_rules(50)):
                parse_rule(raw)
                await uow.definitions.add(
                    StoredSegment(
                        id=uuid4(),
                        merchant_id=MERCHANT,
                        key=f"s{i}",
                        name=f"S{i}",
                        description="",
                        rule=json.loads(json.dumps(raw)),
                        version=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
            await uow.commit()
        rng = random.Random(11)
        orders = [
            OrderPaid(
                order_id=f"o{n}",
                customer_id=f"c{rng.randrange(customers)}",
                lines=(
                    OrderLine(
                        line_id="l1",
                        product_id=f"p{rng.randrange(100)}",
                        category=rng.choice(CATEGORIES),
                        quantity=1,
                        amount_minor=rng.randrange(20_000),
                    ),
                ),
                paid_at=now - timedelta(days=rng.randrange(120)),
            )
            for n in range(events)
        ]
        base = f"segments.incremental{label}"
        seconds, changes = await _phase(
            ctx, svc, settings, runners, orders, base, None,
            lambda changes: f"order.paid over {customers:,} customers, 50 segments, one worker with "
            f"{consumers} consumer(s); {changes:,} events out; goal >= 10,000",
        )  # fmt: skip
        ctx.report(
            Measurement(f"{base}.changes_per_s", rate(changes, seconds), "events/s", "emitted"),
            against="raw.pg.insert.executemany",
        )
        # As many orders again, of the same customers: the steady state of a merchant whose customers
        # are known and sit in their segments, where an order moves a few memberships, not dozens.
        again = [order.model_copy(update={"order_id": f"{order.order_id}-again"}) for order in orders]
        await _phase(
            ctx, svc, settings, runners, again, base, "known_customers",
            lambda changes: f"order.paid again over the same customers; {changes:,} events out",
        )  # fmt: skip
        # The same customers again, with a profile change no segment reads (the city): the cost of
        # evaluation (facts loaded, built-ins and the segments reading the profile re-evaluated) without
        # emission. Only customers the orders created: a customer first seen here is evaluated against
        # every segment, and enters those that hold on empty facts.
        known = sorted({order.customer_id for order in orders})
        unchanged = [
            CustomerProfileUpdated(customer_id=rng.choice(known), city=f"city-{n}") for n in range(events)
        ]
        await _phase(
            ctx, svc, settings, runners, unchanged, base, "unchanged",
            lambda changes: f"profile changes no segment reads; {changes:,} events out",
        )  # fmt: skip

    ctx.infra.drop_database(settings.database_url)


async def _phase(
    ctx: BenchContext,
    svc: Any,
    settings: Any,
    runners: list[ConsumerRunner[Any]],
    events: list[Any],
    base: str,
    phase: str | None,
    note: Callable[[int], str],
) -> tuple[float, int]:
    """One timed phase: its events/s beside the raw consume limit, and the CPU it cost the worker and
    Postgres; returns (seconds, events out). Figures are `<base>.events_per_s` for the main phase and
    `<base>.<phase>_events_per_s` for the others; `note` gives the figure's note from the events out."""
    seconds, handled, changes, cpu = await _produce_and_consume(svc, settings, events, runners)
    figure = f"{base}.{phase}_events_per_s" if phase else f"{base}.events_per_s"
    ctx.report(
        Measurement(figure, rate(handled, seconds), "events/s", note(changes)), against="raw.kafka.consume"
    )
    _report_cpu(ctx, f"{base}.{phase}" if phase else base, handled, cpu)
    return seconds, changes


def _report_cpu(ctx: BenchContext, name: str, handled: int, cpu: CpuMeter) -> None:
    """Events per CPU-second of the worker and of Postgres: the rates each would allow with the cores
    to itself (here they share two with each other and the broker)."""
    for part, seconds in (("worker", cpu.worker_seconds), ("postgres", cpu.postgres_seconds)):
        ctx.report(
            Measurement(
                f"{name}.per_{part}_cpu_s",
                rate(handled, seconds),
                "events/s",
                f"{part} CPU {seconds:.1f} s, {seconds / handled * 1e6:.0f} µs an event",
            ),
            against="raw.kafka.consume",
        )


@asynccontextmanager
async def _worker_consumers(svc: Any, consumers: int) -> AsyncIterator[list[ConsumerRunner[Any]]]:
    """The harness's consumer plus `consumers - 1` more members of its group, as one worker runs them."""
    assert svc.runner is not None
    extra = [
        ConsumerRunner(
            svc.settings, group_id=svc.runner.group_id, topics=SERVICE.consumed_topics,
            registry=SERVICE.handlers, unit_of_work=svc.uow, dlq_producer=svc.producer,
        )
        for _ in range(consumers - 1)
    ]  # fmt: skip
    for runner in extra:
        await runner.start()
    try:
        yield [svc.runner, *extra]
    finally:
        for runner in extra:
            await runner.stop()


async def _produce_and_consume(
    svc: Any, settings: Any, events: list[Any], runners: list[ConsumerRunner[Any]]
) -> tuple[float, int, int, CpuMeter]:
    """Put the events on their topic, then time the worker's consumers handling them; returns (seconds,
    events handled in that time, events out, the CPU the worker and Postgres spent on them)."""
    async with svc.uow() as uow:
        before = (await uow.session.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    producer = create_producer(settings)
    await producer.start()
    try:
        futures = []
        for event in events:
            envelope = Envelope.wrap(event, source="bench", merchant_id=MERCHANT, subject=event.customer_id)
            futures.append(
                await producer.send(
                    settings.topic(event.topic), envelope.to_bytes(), key=envelope.key.encode()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    total = sum(runner.handled for runner in runners) + len(events)
    with CpuMeter() as cpu:
        seconds, handled = await consume_concurrently(runners, total)
    async with svc.uow() as uow:
        after = (await uow.session.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    return seconds, handled, int(after - before), cpu


async def run(ctx: BenchContext) -> None:
    await _recompute(ctx)
    await _incremental(ctx, consumers=1)
    await _incremental(ctx, consumers=None)
