"""The publisher: claims due posts with SKIP LOCKED and publishes each exactly once.

Marking a post published, emitting `post.published` (outbox) and queueing its webhook deliveries happen
in one transaction, so a worker that dies mid-batch leaves its posts scheduled for the next claim, and
two workers never hold the same post. A cron post's next occurrence is created in that transaction too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import httpx
from pydantic import TypeAdapter

from meadow_contracts.envelope import new_event_id, utc_now
from meadow_contracts.events import PostPublished
from meadow_runtime.settings import Settings
from meadow_runtime.telemetry import current_trace_headers
from meadow_runtime.uow import UnitOfWork

from ..domain.scheduling import SchedulingError, next_cron_fire
from ..lotteries.service import draw_due, open_daily_lotteries
from ..uow import ContentUnitOfWork
from ..webhooks.service import deliver_due

log = logging.getLogger(__name__)
BATCH_SIZE = 1000
IDLE_SECONDS = 1.0
OPEN_LOTTERIES_EVERY_SECONDS = 60.0
_DATETIME = TypeAdapter(datetime)

NEXT_OCCURRENCE_COLUMNS = (
    "merchant_id",
    "kind",
    "title",
    "body",
    "details",
    "group_ids",
    "segment_ids",
    "campaign_id",
    "series_id",
    "schedule_kind",
    "cron",
    "min_tier_rank",
    "public_at",
    "closes_at",
    "created_by",
)


async def claim_and_publish(uow: ContentUnitOfWork, now: datetime, limit: int = BATCH_SIZE) -> int:
    """Publish up to `limit` due posts inside the caller's transaction (the caller commits).

    One statement claims, marks published, writes `post.published` and queues webhooks for the whole
    batch (see `PublisherRepository`); only a cron occurrence comes back to Python, for its successor.
    """
    published, cron_posts = await uow.publisher.publish_due(
        now=now,
        limit=limit,
        event_type=PostPublished.event_type,
        topic=PostPublished.topic,
        source=uow.source,
        emitted_at=_json_time(utc_now()),
        published_at=_json_time(now),
        headers=json.dumps(current_trace_headers()),
    )
    for merchant_id, post_id in cron_posts:
        await _schedule_next_occurrence(uow, merchant_id, post_id, now)
    return published


def _json_time(moment: datetime) -> str:
    """A timestamp as the envelope's JSON carries it (pydantic's form), so SQL-built events match."""
    return _DATETIME.dump_python(moment, mode="json")  # type: ignore[no-any-return]


async def _schedule_next_occurrence(
    uow: ContentUnitOfWork, merchant_id: str, post_id: UUID, now: datetime
) -> None:
    post = await uow.posts.get(merchant_id, post_id)
    if post is None or post.cron is None:
        return
    timezone = await uow.audiences.timezone(merchant_id)
    try:
        fire = next_cron_fire(post.cron, timezone, max(post.publish_at, now))
    except SchedulingError:
        log.warning("cron series ended: no next fire", extra={"post": str(post_id)})
        return
    values = {name: getattr(post, name) for name in NEXT_OCCURRENCE_COLUMNS}
    values |= {
        "id": new_event_id(),
        "series_id": post.series_id or post_id,
        "status": "scheduled",
        "requested_at": fire,
        "publish_at": fire,
    }
    await uow.posts.add(values)


async def publish_due(
    uow_factory: Callable[[], ContentUnitOfWork], now: datetime | None = None, limit: int = BATCH_SIZE
) -> int:
    """Claim and publish one batch in its own transaction; returns how many posts went out."""
    async with uow_factory() as uow:
        published = await claim_and_publish(uow, now or datetime.now(UTC), limit)
        await uow.commit()
    return published


async def publish_all_due(
    uow_factory: Callable[[], ContentUnitOfWork], now: datetime | None = None, limit: int = BATCH_SIZE
) -> int:
    total = 0
    while (count := await publish_due(uow_factory, now, limit)) > 0:
        total += count
    return total


async def open_lotteries(uow_factory: Callable[[], ContentUnitOfWork], now: datetime | None = None) -> int:
    """Open today's lottery of every check-in call that carries one (idempotent)."""
    async with uow_factory() as uow:
        opened = await open_daily_lotteries(uow, now or datetime.now(UTC))
        await uow.commit()
    return opened


async def draw_lotteries(uow_factory: Callable[[], ContentUnitOfWork], now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        drawn = await draw_due(uow, now)
        await uow.commit()
    return drawn


async def tick(
    uow_factory: Callable[[], ContentUnitOfWork], client: httpx.AsyncClient, *, open_daily: bool = True
) -> int:
    """One round of the scheduler's work; returns how much it did (0 = idle)."""
    if open_daily:
        await open_lotteries(uow_factory)
    done = await draw_lotteries(uow_factory)
    done += await publish_due(uow_factory)
    done += await deliver_due(uow_factory, client, datetime.now(UTC))
    return done


async def run_scheduler(settings: Settings, uow_factory: Callable[[], UnitOfWork]) -> None:
    """The content worker's scheduler: runs until cancelled; any number may run side by side."""

    def content_uow() -> ContentUnitOfWork:
        uow = uow_factory()
        assert isinstance(uow, ContentUnitOfWork)
        return uow

    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False) as client:
        last_opened = float("-inf")
        while True:
            open_daily = asyncio.get_running_loop().time() - last_opened >= OPEN_LOTTERIES_EVERY_SECONDS
            if open_daily:
                last_opened = asyncio.get_running_loop().time()
            try:
                done = await tick(content_uow, client, open_daily=open_daily)
            except Exception:
                log.exception("scheduler round failed; retrying")
                done = 0
            if not done:
                await asyncio.sleep(IDLE_SECONDS)
