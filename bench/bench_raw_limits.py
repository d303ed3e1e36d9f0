"""The raw limits of this machine, measured first in every run: what later figures are ratios of.

- broker: aiokafka produce (acks=all, batched) and consume, 1 KB messages;
- Postgres: inserts one row per transaction, executemany in batches of 1,000, and COPY.
"""

from __future__ import annotations

import asyncio

import asyncpg

from harness import BenchContext, Measurement, Stopwatch, rate
from meadow_runtime.db import plain_url
from meadow_runtime.kafka import create_consumer, create_producer
from meadow_runtime.settings import Settings

ORDER = 0  # runs first: the others compare against it
MESSAGE = b"x" * 1024


async def _broker(ctx: BenchContext) -> None:
    count = ctx.scale(200_000, 20_000)
    prefix = ctx.infra.fresh_topics(["raw"], partitions=4)
    settings = Settings(kafka_bootstrap_servers=ctx.infra.bootstrap_servers, kafka_topic_prefix=prefix)
    producer = create_producer(settings)
    await producer.start()
    try:
        with Stopwatch() as produce:
            futures = [
                await producer.send(settings.topic("raw"), MESSAGE, key=str(i % 64).encode())
                for i in range(count)
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    ctx.report(Measurement("raw.kafka.produce", rate(count, produce.seconds), "msgs/s", "1 KB, acks=all"))

    consumer = create_consumer(settings, "raw-bench", "raw")
    await consumer.start()
    try:
        seen = 0
        with Stopwatch() as consume:
            while seen < count:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    ctx.report(Measurement("raw.kafka.consume", rate(count, consume.seconds), "msgs/s", "1 KB, getmany"))


async def _postgres(ctx: BenchContext) -> None:
    url = plain_url(ctx.infra.fresh_database(None, stem="raw"))
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE rows (id bigint PRIMARY KEY, merchant text, points int, payload text)"
        )
        single = ctx.scale(5_000, 1_000)
        with Stopwatch() as one_by_one:
            for i in range(single):
                async with conn.transaction():
                    await conn.execute("INSERT INTO rows VALUES ($1, 'm1', 10, 'p')", i)
        ctx.report(Measurement("raw.pg.insert.row_per_tx", rate(single, one_by_one.seconds), "rows/s"))

        batched = ctx.scale(200_000, 20_000)
        values = [(single + i, "m1", 10, "p") for i in range(batched)]
        with Stopwatch() as many:
            for start in range(0, batched, 1000):
                async with conn.transaction():
                    await conn.executemany(
                        "INSERT INTO rows VALUES ($1, $2, $3, $4)", values[start : start + 1000]
                    )
        ctx.report(
            Measurement(
                "raw.pg.insert.executemany", rate(batched, many.seconds), "rows/s", "batches of 1,000"
            )
        )

        copied = [(single + batched + i, "m1", 10, "p") for i in range(batched)]
        with Stopwatch() as copy:
            await conn.copy_records_to_table("rows", records=copied)
        ctx.report(Measurement("raw.pg.insert.copy", rate(batched, copy.seconds), "rows/s"))
    finally:
        await conn.close()


async def run(ctx: BenchContext) -> None:
    await _broker(ctx)
    await _postgres(ctx)
