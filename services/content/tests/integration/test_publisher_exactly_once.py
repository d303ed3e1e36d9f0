"""Exactly-once publishing: three concurrent claim loops, and a worker that dies mid-batch."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from content.models import posts
from content.publisher.service import claim_and_publish, publish_all_due
from meadow_contracts import Topic
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually

from .helpers import merchant


async def _seed_due_posts(svc: ServiceHarness, merchant_id: str, count: int, due: datetime) -> set[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": post_id,
            "merchant_id": merchant_id,
            "kind": "text",
            "title": f"post {n}",
            "status": "scheduled",
            "schedule_kind": "at",
            "requested_at": due + timedelta(seconds=n % 60),
            "publish_at": due + timedelta(seconds=n % 60),
            "created_by": "test",
            "group_ids": [uuid.uuid4()],
        }
        for n, post_id in enumerate(ids)
    ]
    async with svc.uow() as uow:
        await uow.session.execute(insert(posts), rows)
        await uow.commit()
    return set(ids)


async def _published_counts(svc: ServiceHarness, ids: set[uuid.UUID]) -> Counter[str]:
    """How often each of the posts appears as post.published on the topic, once all have appeared.

    Every pending outbox row is relayed first, so a duplicate would already be on the topic.
    """
    await svc.publish_outbox()
    wanted = {str(i) for i in ids}
    async with TopicReader(svc.settings, Topic.CONTENT.value) as reader:

        async def counts() -> Counter[str]:
            await reader.read_available()
            return Counter(
                e.data["post_id"]
                for e in reader.envelopes()
                if e.type == "content.post_published.v1" and e.data["post_id"] in wanted
            )

        return await eventually(counts, until=lambda found: set(found) == wanted, timeout=30)


async def _statuses(svc: ServiceHarness, merchant_id: str) -> dict[str, int]:
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            select(posts.c.status, func.count())
            .where(posts.c.merchant_id == merchant_id)
            .group_by(posts.c.status)
        )
        return {status: int(n) for status, n in rows}


async def test_three_workers_publish_a_thousand_posts_exactly_once(svc: ServiceHarness) -> None:
    merchant_id = merchant()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    ids = await _seed_due_posts(svc, merchant_id, 1000, minute)

    now = minute + timedelta(minutes=1)
    per_worker = await asyncio.gather(*(publish_all_due(svc.uow, now, limit=50) for _ in range(3)))

    assert sum(per_worker) == 1000
    assert all(n > 0 for n in per_worker), per_worker  # the work really was shared
    counts = await _published_counts(svc, ids)
    assert set(counts.values()) == {1}
    assert await _statuses(svc, merchant_id) == {"published": 1000}


async def test_three_running_schedulers_publish_each_post_once(svc: ServiceHarness) -> None:
    merchant_id = merchant()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    ids = await _seed_due_posts(svc, merchant_id, 1000, minute)
    assert svc.service.scheduler is not None
    schedulers = [asyncio.create_task(svc.service.scheduler(svc.settings, svc.uow)) for _ in range(3)]
    try:
        await eventually(
            lambda: _statuses(svc, merchant_id), until=lambda s: s == {"published": 1000}, timeout=30
        )
    finally:
        for task in schedulers:
            task.cancel()
        await asyncio.gather(*schedulers, return_exceptions=True)
    counts = await _published_counts(svc, ids)
    assert set(counts.values()) == {1}


async def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(svc: ServiceHarness) -> None:
    merchant_id = merchant()
    due = datetime.now(UTC) - timedelta(minutes=5)
    ids = await _seed_due_posts(svc, merchant_id, 300, due)
    now = datetime.now(UTC)

    # A worker claims a batch and dies before committing: its transaction rolls back.
    async with svc.uow() as doomed:
        assert await claim_and_publish(doomed, now, limit=200) == 200
        # While it holds its locks, a healthy worker sees only the other rows.
        assert await publish_all_due(svc.uow, now, limit=40) == 100
        await doomed.rollback()

    # A worker cancelled in the middle of its batch (task killed) also leaves nothing behind.
    started = asyncio.Event()

    async def killed_worker() -> None:
        async with svc.uow() as uow:
            await claim_and_publish(uow, now, limit=150)
            started.set()
            await asyncio.Event().wait()  # dies here, before committing

    task = asyncio.create_task(killed_worker())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert await publish_all_due(svc.uow, now, limit=64) == 200
    counts = await _published_counts(svc, ids)
    assert set(counts.values()) == {1}
    assert await _statuses(svc, merchant_id) == {"published": 300}


async def test_posts_not_yet_due_stay_scheduled(svc: ServiceHarness) -> None:
    merchant_id = merchant()
    now = datetime.now(UTC)
    await _seed_due_posts(svc, merchant_id, 5, now + timedelta(hours=1))
    await publish_all_due(svc.uow, now)
    assert await _statuses(svc, merchant_id) == {"scheduled": 5}
