"""Content publisher: N posts due at once, published by 1 and by 2 concurrent claim loops.

Each run seeds a fresh database with COPY, then times the scheduler's claim loop (SKIP LOCKED claim, mark
published, post.published into the outbox, webhook queueing, one transaction per batch of 1,000) until
every post is published. The relay (outbox → Kafka) is the runtime's and is timed on its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from content.app import MIGRATIONS_DIR
from content.publisher.service import publish_all_due
from content.uow import ContentUnitOfWork
from harness import BenchContext, Measurement, Stopwatch, rate
from meadow_runtime.db import create_engine, create_session_factory, plain_url
from meadow_runtime.relay import OutboxRelay
from meadow_runtime.settings import Settings

ORDER = 50

# The baseline's statement: the claim and status change the publisher started from, with no events.
CLAIM_SQL = """
    UPDATE posts SET status = 'published', published_at = $1, updated_at = $1
    WHERE id IN (
        SELECT id FROM posts
        WHERE status = 'scheduled' AND publish_at <= $1
        ORDER BY publish_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, merchant_id, kind, title, group_ids, segment_ids, campaign_id, min_tier_rank, schedule_kind
"""


async def _seed(url: str, count: int, due: datetime) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        group_ids = [uuid.uuid4() for _ in range(50)]
        records = [
            (uuid.uuid4(), f"m{n % 20}", "text", f"post {n}", "scheduled", "at", due, due, "bench",
             [group_ids[n % 50]])
            for n in range(count)
        ]  # fmt: skip
        columns = [
            "id", "merchant_id", "kind", "title", "status", "schedule_kind", "requested_at", "publish_at",
            "created_by", "group_ids",
        ]  # fmt: skip
        await conn.copy_records_to_table("posts", records=records, columns=columns)
        await conn.execute("ANALYZE posts")
    finally:
        await conn.close()


async def _count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _publish(ctx: BenchContext, workers: int, count: int) -> Settings:
    settings = ctx.infra.settings("content", MIGRATIONS_DIR).for_service("content")
    due = datetime.now(UTC) - timedelta(minutes=1)
    await _seed(settings.database_url, count, due)
    engine = create_engine(settings.database_url, pool_size=workers + 1, plan_each_execution=True)
    sessions = create_session_factory(engine)
    uow_factory: Callable[[], ContentUnitOfWork] = lambda: ContentUnitOfWork(sessions, "content")  # noqa: E731
    try:
        now = datetime.now(UTC)
        with Stopwatch() as clock:
            done = await asyncio.gather(*(publish_all_due(uow_factory, now) for _ in range(workers)))
    finally:
        await engine.dispose()
    published = await _count(settings.database_url, "SELECT count(*) FROM posts WHERE status = 'published'")
    events = await _count(settings.database_url, "SELECT count(*) FROM outbox")
    assert published == count == sum(done) == events, (published, count, done, events)
    total = rate(count, clock.seconds)
    note = f"{count:,} due at once, all published once; split {'/'.join(str(d) for d in done)}"
    ctx.report(
        Measurement(f"content.publisher.{workers}_worker", total, "posts/s", note),
        against="content.publisher.baseline.claim_only",
    )
    ctx.report(
        Measurement(
            f"content.publisher.{workers}_worker.per_worker", total / workers, "posts/s", "goal ≥ 5,000"
        ),
        against="raw.pg.insert.executemany",
    )
    return settings


async def _relay(ctx: BenchContext, settings: Settings, count: int) -> None:
    relay = OutboxRelay(settings)
    await relay.start()
    try:
        with Stopwatch() as clock:
            while await relay.publish_batch():
                pass
    finally:
        await relay.stop()
    ctx.report(
        Measurement(
            "content.relay.post_published",
            rate(count, clock.seconds),
            "events/s",
            "runtime relay, 1 instance",
        ),
        against="raw.kafka.produce",
    )


async def _claim_only(ctx: BenchContext, count: int) -> None:
    """Baseline: the same claim statement alone (no events, no webhooks), one worker, bare asyncpg."""
    settings = ctx.infra.settings("content", MIGRATIONS_DIR)
    await _seed(settings.database_url, count, datetime.now(UTC) - timedelta(minutes=1))
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        now = datetime.now(UTC)
        claimed = 0
        with Stopwatch() as clock:
            while True:
                async with conn.transaction():
                    rows = await conn.fetch(CLAIM_SQL, now, 1000)
                if not rows:
                    break
                claimed += len(rows)
    finally:
        await conn.close()
    assert claimed == count
    ctx.report(
        Measurement(
            "content.publisher.baseline.claim_only", rate(count, clock.seconds), "posts/s", "no events"
        ),
        against="raw.pg.insert.executemany",
    )


async def run(ctx: BenchContext) -> None:
    count = ctx.scale(100_000, 10_000)
    await _claim_only(ctx, count)
    settings = await _publish(ctx, 1, count)
    await _publish(ctx, 2, count)
    await _relay(ctx, settings, count)
