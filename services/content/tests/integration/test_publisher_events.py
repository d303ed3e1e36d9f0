"""The events the publisher's set-based statement writes are exactly what the runtime's outbox would write.

One batch mixes merchants, audiences (groups, segments, campaign, early access), a cron occurrence and
webhook endpoints that are subscribed, not subscribed and deactivated; every outbox row, every delivery
and every record on the topic is decoded with meadow_contracts and compared field by field.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from content.models import posts, webhook_deliveries
from content.publisher.service import claim_and_publish
from meadow_contracts import Envelope, Topic
from meadow_contracts.events import PostPublished
from meadow_runtime.outbox import OUTBOX
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually

from .helpers import merchant


def _post(merchant_id: str, due: datetime, n: int, **values: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "merchant_id": merchant_id,
        "kind": "text",
        "title": f'上新 {n} "quoted" \\ {{json}}',
        "status": "scheduled",
        "schedule_kind": "at",
        "requested_at": due,
        "publish_at": due,
        "created_by": "test",
        "group_ids": [uuid.uuid4()],
        # Every row names every column: an executemany INSERT takes its columns from the first row.
        "segment_ids": [],
        "campaign_id": None,
        "min_tier_rank": None,
        "cron": None,
        **values,
    }


@pytest.fixture(autouse=True)
def local_receivers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Endpoints here are http://127.0.0.1: the operator escape hatches of a dev rig.
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")


async def _endpoint(svc: ServiceHarness, merchant_id: str, port: int, **body: Any) -> str:
    response = await svc.client.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/hook", **body}, headers=svc.auth(merchant_id)
    )
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    return endpoint_id


async def test_one_batch_of_mixed_posts_writes_the_runtimes_envelopes_and_webhooks(
    svc: ServiceHarness,
) -> None:
    hooked, quiet = merchant(), merchant()
    subscribed = await _endpoint(svc, hooked, 1)
    await _endpoint(svc, hooked, 2, event_types=["content.comment_created.v1"])
    retired = await _endpoint(svc, hooked, 3)
    assert (await svc.client.delete(f"/v1/webhooks/{retired}", headers=svc.auth(hooked))).status_code == 204

    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    rows = [
        _post(hooked, due, 1),
        _post(hooked, due, 2, kind="early_access", min_tier_rank=2, campaign_id=uuid.uuid4()),
        _post(hooked, due, 3, group_ids=[], segment_ids=[uuid.uuid4(), uuid.uuid4()]),
        _post(quiet, due, 4, group_ids=[uuid.uuid4(), uuid.uuid4()]),
        _post(quiet, due, 5, schedule_kind="cron", cron="0 9 * * *"),
        _post(quiet, due + timedelta(hours=1), 6),  # not yet due
    ]
    async with svc.uow() as uow:
        await uow.session.execute(insert(posts), rows)
        await uow.commit()
    due_posts = {row["id"]: row for row in rows[:5]}

    now = datetime.now(UTC)
    async with svc.uow() as uow:
        before = datetime.now(UTC)
        assert await claim_and_publish(uow, now, limit=100) == 5
        after = datetime.now(UTC)
        await uow.commit()

    async with svc.uow() as uow:
        outbox = (await uow.session.execute(select(OUTBOX))).all()
        deliveries = (await uow.session.execute(select(webhook_deliveries))).all()
        statuses = {r.id: r.status for r in await uow.session.execute(select(posts.c.id, posts.c.status))}
        successors = (
            await uow.session.execute(select(posts).where(posts.c.series_id == rows[4]["id"]))
        ).all()

    assert {statuses[post_id] for post_id in due_posts} == {"published"}
    assert statuses[rows[5]["id"]] == "scheduled"
    assert [s.status for s in successors] == ["scheduled"]
    assert successors[0].publish_at > now

    published = [row for row in outbox if row.type == PostPublished.event_type]
    assert len(published) == 5
    assert len({row.id for row in published}) == 5
    by_post: dict[uuid.UUID, Envelope] = {}
    for row in published:
        envelope = Envelope.model_validate(row.payload)
        event = PostPublished.model_validate(envelope.data)
        post = due_posts[event.post_id]
        by_post[event.post_id] = envelope
        assert envelope.id == row.id
        assert envelope.id.version == 7
        assert envelope.id.variant == uuid.RFC_4122
        made_at = datetime.fromtimestamp((envelope.id.int >> 80) / 1000, UTC)  # the id's 48-bit Unix ms
        assert before - timedelta(seconds=1) <= made_at <= after + timedelta(seconds=1)
        assert before - timedelta(seconds=1) <= envelope.time <= after
        # What `uow.outbox.add(PostPublished(...))` would have written for this post, field for field.
        expected = Envelope.wrap(
            PostPublished(
                post_id=post["id"],
                kind=post["kind"],
                title=post["title"],
                group_ids=tuple(post["group_ids"]),
                segment_ids=tuple(post["segment_ids"]),
                campaign_id=post["campaign_id"],
                min_tier_rank=post["min_tier_rank"],
                published_at=now,
            ),
            source="content",
            merchant_id=post["merchant_id"],
            subject=str(post["id"]),
            id=envelope.id,
            time=envelope.time,
        )
        assert row.payload == json.loads(expected.model_dump_json())
        assert (row.aggregatetype, row.aggregateid) == (PostPublished.topic, expected.key)
        assert isinstance(row.headers, dict)
    assert set(by_post) == set(due_posts)

    # Webhooks: one per post of the merchant's subscribed, active endpoint; nothing for the others.
    assert sorted(str(d.endpoint_id) for d in deliveries) == [subscribed] * 3
    for delivery in deliveries:
        envelope = Envelope.model_validate(delivery.payload)
        assert by_post[uuid.UUID(envelope.subject)] == envelope
        assert (delivery.event_id, delivery.merchant_id) == (envelope.id, hooked)
        assert (delivery.event_type, delivery.status) == (PostPublished.event_type, "pending")
        assert delivery.id.version == 7
    assert len({d.id for d in deliveries}) == len(deliveries)

    # On the topic, through the runtime's relay, each decodes to the same envelope.
    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.CONTENT.value) as reader:

        async def on_topic() -> dict[uuid.UUID, Envelope]:
            await reader.read_available()
            return {
                envelope.id: envelope
                for envelope in reader.envelopes()
                if envelope.type == PostPublished.event_type and envelope.merchant_id in (hooked, quiet)
            }

        seen = await eventually(on_topic, until=lambda found: len(found) == 5, timeout=30)
    assert sorted(seen.values(), key=lambda e: e.subject) == sorted(by_post.values(), key=lambda e: e.subject)


async def test_an_empty_claim_writes_nothing(svc: ServiceHarness) -> None:
    m = merchant()
    async with svc.uow() as uow:
        await uow.session.execute(insert(posts), [_post(m, datetime.now(UTC) + timedelta(hours=1), 1)])
        await uow.commit()
    async with svc.uow() as uow:
        before = len((await uow.session.execute(select(OUTBOX.c.id))).all())
        assert await claim_and_publish(uow, datetime.now(UTC), limit=10) == 0
        await uow.commit()
    async with svc.uow() as uow:
        assert len((await uow.session.execute(select(OUTBOX.c.id))).all()) == before
