"""Comments (links only from staff), one vote and one like per member, early access by tier."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from content.publisher.service import publish_all_due
from meadow_contracts import Topic
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually

from .helpers import join, make_group, merchant, row_counts, set_tier


async def published_post(svc: ServiceHarness, m: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await svc.client.post(
        "/v1/posts", json=body | {"schedule": {"kind": "now"}}, headers=svc.auth(m)
    )
    assert response.status_code == 201, response.text
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))
    post: dict[str, Any] = response.json()
    return post


def member(svc: ServiceHarness, m: str, customer_id: str) -> dict[str, str]:
    return svc.auth(m, role="customer", customer_id=customer_id)


async def test_member_links_are_refused_and_staff_links_allowed(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    await join(svc, m, group, "alice")
    post = await published_post(svc, m, {"kind": "text", "title": "hi", "group_ids": [str(group)]})
    url = f"/v1/posts/{post['id']}/comments"

    before = await row_counts(svc, m)
    refused = await svc.client.post(
        url, json={"body": "cheaper at taobao.com/x"}, headers=member(svc, m, "alice")
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0] == {
        "pointer": "/body",
        "detail": "only staff may post links (found 'taobao.com')",
        "type": "link-not-allowed",
    }
    assert await row_counts(svc, m) == before

    ok = await svc.client.post(url, json={"body": "宝宝很喜欢"}, headers=member(svc, m, "alice"))
    assert ok.status_code == 201
    assert ok.json()["group_id"] == str(group)
    staff = await svc.client.post(
        url,
        json={"body": "details: https://shop.example.com/p/1", "reply_to": ok.json()["id"]},
        headers=svc.auth(m),
    )
    assert staff.status_code == 201
    assert staff.json()["by_staff"] is True

    outsider = await svc.client.post(url, json={"body": "let me in"}, headers=member(svc, m, "mallory"))
    assert outsider.status_code == 403

    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.CONTENT.value) as reader:

        async def comments() -> list[Any]:
            await reader.read_available()
            return [
                e for e in reader.envelopes() if e.type == "content.comment_created.v1" and e.merchant_id == m
            ]

        created = await eventually(comments, until=lambda found: len(found) == 2)
    assert {e.data["by_staff"] for e in created} == {True, False}


async def test_buyer_show_needs_photos_and_order_and_staff_can_hide(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    await join(svc, m, group, "bob")
    post = await published_post(svc, m, {"kind": "text", "title": "show us", "group_ids": [str(group)]})
    url = f"/v1/posts/{post['id']}/comments"
    missing = await svc.client.post(
        url, json={"kind": "buyer_show", "body": "love it"}, headers=member(svc, m, "bob")
    )
    assert missing.json()["errors"][0]["pointer"] == "/image_urls"
    show = await svc.client.post(
        url,
        json={
            "kind": "buyer_show",
            "body": "love it",
            "image_urls": ["https://img.example.com/1.jpg"],
            "order_id": "o1",
        },
        headers=member(svc, m, "bob"),
    )
    assert show.status_code == 201, show.text
    hidden = await svc.client.patch(
        f"/v1/comments/{show.json()['id']}", json={"hidden": True}, headers=svc.auth(m)
    )
    assert hidden.json()["hidden"] is True
    seen_by_member = (await svc.client.get(url, headers=member(svc, m, "bob"))).json()["items"]
    seen_by_staff = (await svc.client.get(url, headers=svc.auth(m))).json()["items"]
    assert len(seen_by_member) == 0
    assert len(seen_by_staff) == 1


async def test_one_vote_per_member_under_concurrency(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    voters = [f"v{i}" for i in range(10)]
    await join(svc, m, group, *voters)
    poll = {"options": [{"id": "red", "label": "Red"}, {"id": "blue", "label": "Blue"}]}
    post = await published_post(
        svc, m, {"kind": "poll", "title": "Which colour?", "group_ids": [str(group)], "poll": poll}
    )
    url = f"/v1/posts/{post['id']}/votes"

    async def vote(customer: str, option: str) -> int:
        response = await svc.client.post(url, json={"option_id": option}, headers=member(svc, m, customer))
        return response.status_code

    # Every member fires five votes at once; exactly one of each member's lands.
    statuses = await asyncio.gather(*(vote(c, "red" if n % 2 else "blue") for c in voters for n in range(5)))
    assert statuses.count(201) == len(voters)
    assert statuses.count(409) == 4 * len(voters)
    results = (await svc.client.get(f"/v1/posts/{post['id']}/results", headers=member(svc, m, "v0"))).json()
    assert results["total_votes"] == len(voters)
    assert sum(o["votes"] for o in results["options"]) == len(voters)
    assert results["my_vote"] in {"red", "blue"}

    bad = await svc.client.post(url, json={"option_id": "green"}, headers=member(svc, m, "v0"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/option_id"


async def test_a_member_likes_a_post_once_and_the_first_like_is_announced(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    await join(svc, m, group, "ann", "bo")
    post = await published_post(svc, m, {"kind": "text", "title": "new arrivals", "group_ids": [str(group)]})
    url = f"/v1/posts/{post['id']}/likes"

    # ann taps like five times at once: one like lands, the others answer with it
    taps = await asyncio.gather(*(svc.client.post(url, headers=member(svc, m, "ann")) for _ in range(5)))
    assert sorted(t.status_code for t in taps) == [200, 200, 200, 200, 201]
    assert {t.json()["liked_at"] for t in taps} == {taps[0].json()["liked_at"]}
    second = await svc.client.post(url, headers=member(svc, m, "bo"))
    assert second.status_code == 201
    assert second.json()["likes"] == 2
    before = await row_counts(svc, m)
    assert (await svc.client.post(url, headers=member(svc, m, "mallory"))).status_code == 403
    assert (await svc.client.post(url, headers=svc.auth(m))).status_code == 403, "staff do not like"
    assert await row_counts(svc, m) == before

    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.CONTENT.value) as reader:

        async def likes() -> list[Any]:
            await reader.read_available()
            return [e for e in reader.envelopes() if e.type == "content.post_liked.v1" and e.merchant_id == m]

        announced = await eventually(likes, until=lambda found: len(found) >= 2)
    assert sorted(e.data["customer_id"] for e in announced) == ["ann", "bo"]
    assert {e.data["group_id"] for e in announced} == {str(group)}


async def test_a_closed_poll_refuses_votes(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    await join(svc, m, group, "late")
    closes = (datetime.now(UTC) + timedelta(milliseconds=1)).isoformat()
    poll = {"options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}], "closes_at": closes}
    post = await published_post(
        svc, m, {"kind": "poll", "title": "quick", "group_ids": [str(group)], "poll": poll}
    )
    response = await svc.client.post(
        f"/v1/posts/{post['id']}/votes", json={"option_id": "a"}, headers=member(svc, m, "late")
    )
    assert response.status_code == 409
    assert response.json()["title"] == "Poll closed"


async def test_early_access_only_for_qualifying_tiers_until_public(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    await join(svc, m, group, "gold", "basic")
    await set_tier(svc, m, "gold", 3)
    await set_tier(svc, m, "basic", 1)
    early = {"min_tier_rank": 2, "public_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    post = await published_post(
        svc, m, {"kind": "early_access", "title": "preview", "group_ids": [str(group)], "early_access": early}
    )
    assert (
        await svc.client.get(f"/v1/posts/{post['id']}", headers=member(svc, m, "gold"))
    ).status_code == 200
    refused = await svc.client.get(f"/v1/posts/{post['id']}", headers=member(svc, m, "basic"))
    assert refused.status_code == 403
    assert refused.json()["type"] == "early-access"
    gold_feed = (await svc.client.get("/v1/feed", headers=member(svc, m, "gold"))).json()["items"]
    basic_feed = (await svc.client.get("/v1/feed", headers=member(svc, m, "basic"))).json()["items"]
    assert [p["id"] for p in gold_feed] == [post["id"]]
    assert basic_feed == []

    public = {"min_tier_rank": 2, "public_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    open_post = await published_post(
        svc,
        m,
        {"kind": "early_access", "title": "now public", "group_ids": [str(group)], "early_access": public},
    )
    assert (
        await svc.client.get(f"/v1/posts/{open_post['id']}", headers=member(svc, m, "basic"))
    ).status_code == 200
