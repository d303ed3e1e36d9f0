"""The scheduler loop, caps under concurrent scheduling, best time, and the audience projections."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from content.models import comments
from content.publisher.service import publish_all_due
from meadow_contracts import Envelope, Topic
from meadow_contracts.events import MemberBlocked, MemberLeft, SegmentEntered, SegmentExited, TierChanged
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import eventually, produce

from .helpers import join, make_group, merchant

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_the_scheduler_publishes_due_posts_on_its_own(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    created = await svc.client.post(
        "/v1/posts",
        json={"kind": "text", "title": "now", "group_ids": [str(group)], "schedule": {"kind": "now"}},
        headers=svc.auth(m),
    )
    assert svc.service.scheduler is not None
    scheduler = asyncio.create_task(svc.service.scheduler(svc.settings, svc.uow))
    try:

        async def status() -> str:
            response = await svc.client.get(f"/v1/posts/{created.json()['id']}", headers=svc.auth(m))
            found: str = response.json()["status"]
            return found

        assert await eventually(status, until=lambda s: s == "published", timeout=15) == "published"
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)


async def test_caps_hold_when_posts_are_scheduled_concurrently(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m, max_posts_per_day=3)
    at = datetime.combine(datetime.now(SHANGHAI).date() + timedelta(days=4), datetime.min.time(), SHANGHAI)
    at = at.replace(hour=15)

    async def schedule(n: int) -> dict[str, Any]:
        body = {
            "kind": "text",
            "title": f"p{n}",
            "group_ids": [str(group)],
            "schedule": {"kind": "at", "at": at.isoformat()},
        }
        response = await svc.client.post("/v1/posts", json=body, headers=svc.auth(m))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    created = await asyncio.gather(*(schedule(n) for n in range(7)))
    per_day: dict[str, int] = {}
    for post in created:
        day = datetime.fromisoformat(post["publish_at"]).astimezone(SHANGHAI).date().isoformat()
        per_day[day] = per_day.get(day, 0) + 1
    assert sorted(per_day.values()) == [1, 3, 3]
    assert sum(p["rescheduled"] for p in created) == 4


async def test_best_time_follows_the_groups_activity(svc: ServiceHarness) -> None:
    m = merchant()
    group, quiet_group = await make_group(svc, m, max_posts_per_day=None), await make_group(svc, m)
    now = datetime.now(UTC)
    busy_hour = 14
    rows = []
    for days_ago in range(1, 8):
        local = datetime.combine(
            (now - timedelta(days=days_ago)).astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI
        )
        for minute in range(0, 60, 10):
            rows.append(local.replace(hour=busy_hour, minute=minute))
        rows.append(local.replace(hour=9))
    async with svc.uow() as uow:
        await uow.session.execute(
            insert(comments),
            [
                {
                    "id": uuid.uuid4(),
                    "merchant_id": m,
                    "post_id": uuid.uuid4(),
                    "group_id": group,
                    "customer_id": "c",
                    "by_staff": False,
                    "kind": "comment",
                    "body": "hi",
                    "created_at": at,
                }
                for at in rows
            ],
        )
        await uow.commit()

    async def best(group_id: uuid.UUID) -> datetime:
        body = {"kind": "text", "title": "t", "group_ids": [str(group_id)], "schedule": {"kind": "best_time"}}
        response = await svc.client.post("/v1/posts", json=body, headers=svc.auth(m))
        assert response.status_code == 201, response.text
        return datetime.fromisoformat(response.json()["publish_at"]).astimezone(SHANGHAI)

    chosen = await best(group)
    assert (chosen.hour, chosen.minute) == (busy_hour, 0)
    assert timedelta(0) < chosen - datetime.now(SHANGHAI) <= timedelta(days=1)
    default = await best(quiet_group)
    assert (default.hour, default.minute) in {(9, 30), (12, 0), (20, 0), (21, 0)}


async def test_projections_follow_membership_segments_and_tiers(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    segment = uuid.uuid4()
    await join(svc, m, group, "stays", "leaves", "blocked")
    now = datetime.now(UTC)
    envelopes = [
        Envelope.wrap(
            MemberLeft(group_id=group, subgroup_id=uuid.uuid4(), customer_id="leaves", left_at=now),
            source="membership",
            merchant_id=m,
            subject="leaves",
        ),
        Envelope.wrap(
            MemberBlocked(customer_id="blocked", blocked_by="owner", blocked_at=now),
            source="membership",
            merchant_id=m,
            subject="blocked",
        ),
    ]
    await produce(svc.settings, Topic.MEMBERSHIP.value, *envelopes)
    segment_events = [
        Envelope.wrap(
            SegmentEntered(segment_id=segment, segment_key="vip", customer_id=c, entered_at=now),
            source="segments",
            merchant_id=m,
            subject=c,
        )
        for c in ("seg-in", "seg-out")
    ] + [
        Envelope.wrap(
            SegmentExited(segment_id=segment, segment_key="vip", customer_id="seg-out", exited_at=now),
            source="segments",
            merchant_id=m,
            subject="seg-out",
        )
    ]
    await produce(svc.settings, Topic.SEGMENTS.value, *segment_events)
    # A late, older tier change must not overwrite the newer one.
    tiers = [
        TierChanged(
            customer_id="stays", old_tier=None, new_tier="gold", new_rank=3, direction="up", changed_at=now
        ),
        TierChanged(
            customer_id="stays",
            old_tier=None,
            new_tier="silver",
            new_rank=1,
            direction="up",
            changed_at=now - timedelta(days=1),
        ),
    ]
    await produce(
        svc.settings,
        Topic.REWARDS.value,
        *(Envelope.wrap(t, source="rewards", merchant_id=m, subject="stays") for t in tiers),
    )
    await svc.consume()

    group_post = await svc.client.post(
        "/v1/posts",
        json={"kind": "text", "title": "g", "group_ids": [str(group)], "schedule": {"kind": "now"}},
        headers=svc.auth(m),
    )
    segment_post = await svc.client.post(
        "/v1/posts",
        json={"kind": "text", "title": "s", "segment_ids": [str(segment)], "schedule": {"kind": "now"}},
        headers=svc.auth(m),
    )
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))

    async def can_see(customer: str, post: Any) -> bool:
        headers = svc.auth(m, role="customer", customer_id=customer)
        return (await svc.client.get(f"/v1/posts/{post.json()['id']}", headers=headers)).status_code == 200

    assert await can_see("stays", group_post)
    assert not await can_see("leaves", group_post)
    assert not await can_see("blocked", group_post)
    assert await can_see("seg-in", segment_post)
    assert not await can_see("seg-out", segment_post)
    async with svc.uow() as uow:
        assert await uow.audiences.tier_rank(m, "stays") == 3


async def test_idempotency_key_replays_and_refuses_a_different_body(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    body = {"kind": "text", "title": "once", "group_ids": [str(group)]}
    headers = svc.auth(m) | {"Idempotency-Key": "k-1"}
    first = await svc.client.post("/v1/posts", json=body, headers=headers)
    again = await svc.client.post("/v1/posts", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await svc.client.post("/v1/posts", json=body | {"title": "twice"}, headers=headers)
    assert other.status_code == 409
    assert len((await svc.client.get("/v1/posts", headers=svc.auth(m))).json()["items"]) == 1


async def test_openapi_documents_the_api(svc: ServiceHarness) -> None:
    spec = (await svc.client.get("/openapi.json")).json()
    for path in (
        "/v1/posts",
        "/v1/campaigns",
        "/v1/posts/{post_id}/comments",
        "/v1/posts/{post_id}/votes",
        "/v1/posts/{post_id}/likes",
        "/v1/lotteries/{lottery_id}/verify",
        "/v1/webhooks",
        "/v1/webhooks/deliveries/{delivery_id}/retry",
    ):
        assert path in spec["paths"], path
