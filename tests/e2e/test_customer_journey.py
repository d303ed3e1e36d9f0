"""A customer's journey across all four services, events flowing only through Kafka.

An order system publishes two paid orders. Segments sees a repeat buyer and says so; membership, which
gates its repeat-buyers group on that segment, lets the customer in; rewards credits purchase points,
then welcome points for the join. A one-order customer is refused, told which rule failed. Every service
has its own database; they share only the topics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import pytest

from content.app import MIGRATIONS_DIR as CONTENT_MIGRATIONS
from content.app import SERVICE as CONTENT
from meadow_contracts import Envelope, OrderPaid, Topic
from meadow_contracts.events import OrderLine
from meadow_runtime.testing.harness import ServiceHarness, running_service
from meadow_runtime.testing.infrastructure import Infrastructure
from meadow_runtime.testing.kafka import eventually, produce
from membership.app import MIGRATIONS_DIR as MEMBERSHIP_MIGRATIONS
from membership.app import SERVICE as MEMBERSHIP
from rewards.app import MIGRATIONS_DIR as REWARDS_MIGRATIONS
from rewards.app import SERVICE as REWARDS
from segments.app import MIGRATIONS_DIR as SEGMENTS_MIGRATIONS
from segments.app import SERVICE as SEGMENTS

MERCHANT = "m-journey"
CHECK_IN_MERCHANT = "m-check-in"  # its own merchant: no earn rules from the other journey apply
Services = dict[str, ServiceHarness]


@pytest.fixture(scope="module")
async def services(infrastructure: Infrastructure) -> AsyncIterator[Services]:
    prefix = infrastructure.fresh_topics()
    definitions = {
        "membership": (MEMBERSHIP, MEMBERSHIP_MIGRATIONS),
        "content": (CONTENT, CONTENT_MIGRATIONS),
        "rewards": (REWARDS, REWARDS_MIGRATIONS),
        "segments": (SEGMENTS, SEGMENTS_MIGRATIONS),
    }
    async with AsyncExitStack() as stack:
        running: Services = {}
        for name, (service, migrations) in definitions.items():
            settings = infrastructure.settings(name, migrations, kafka_topic_prefix=prefix)
            running[name] = await stack.enter_async_context(running_service(settings, service))
        yield running


async def pump_until(services: Services, check: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    """Move events between the services (relay, then consume) until `check` returns something truthy."""

    async def one_round() -> Any:
        for harness in services.values():
            await harness.publish_outbox()
        for harness in services.values():
            if harness.runner is not None:
                await harness.runner.poll_once(timeout_ms=100)
        return await check()

    return await eventually(one_round, timeout=timeout)


def order(customer: str, number: int, amount_minor: int) -> Envelope:
    paid = OrderPaid(
        order_id=f"{customer}-o{number}",
        customer_id=customer,
        lines=(
            OrderLine(
                line_id="1",
                product_id="milk-1",
                category="milk_powder",
                quantity=1,
                amount_minor=amount_minor,
            ),
        ),
        paid_at=datetime.now(UTC),
    )
    return Envelope.wrap(paid, source="order-system", merchant_id=MERCHANT, subject=customer)


async def test_a_repeat_buyer_earns_points_joins_the_gated_group_and_gets_welcome_points(
    services: Services,
) -> None:
    rewards, membership = services["rewards"], services["membership"]
    owner = membership.auth(MERCHANT)
    for rule in (
        {"kind": "purchase", "name": "1 point per yuan", "points_per_unit": "1"},
        {"kind": "join_group", "name": "welcome", "points": 50},
    ):
        created = await rewards.client.post("/v1/earn-rules", json=rule, headers=owner)
        assert created.status_code == 201, created.text
    group = await membership.client.post(
        "/v1/groups",
        json={"name": "奶粉老客群", "join_rules": {"required_segments": ["lifecycle:repurchase"]}},
        headers=owner,
    )
    assert group.status_code == 201, group.text
    group_id = group.json()["id"]

    await produce(
        rewards.settings, Topic.COMMERCE_ORDERS.value, order("loyal", 1, 26_900), order("loyal", 2, 31_900)
    )
    await produce(rewards.settings, Topic.COMMERCE_ORDERS.value, order("once", 1, 4_900))

    async def loyal_may_join() -> bool:
        answer = await membership.client.get(
            "/v1/eligibility", params={"customer_id": "loyal"}, headers=owner
        )
        return group_id in [g["group_id"] for g in answer.json()["groups"]]

    await pump_until(services, loyal_may_join)

    async def points(customer: str) -> int:
        balance = await rewards.client.get(f"/v1/customers/{customer}/balance", headers=owner)
        return int(balance.json()["points"]) if balance.status_code == 200 else -1

    assert await pump_until(services, lambda: _equals(points("loyal"), 269 + 319)) is True

    joined = await membership.client.post(
        f"/v1/groups/{group_id}/members", json={"customer_id": "loyal"}, headers=owner
    )
    assert joined.status_code in {200, 201}, joined.text
    assert await pump_until(services, lambda: _equals(points("loyal"), 269 + 319 + 50)) is True

    refused = await membership.client.post(
        f"/v1/groups/{group_id}/members", json={"customer_id": "once"}, headers=owner
    )
    assert refused.status_code in {403, 409, 422}, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "lifecycle:repurchase" in refused.text, "the refusal names the rule the customer does not meet"
    assert await points("once") == 49


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_a_members_daily_check_in_on_a_published_post_earns_capped_points(services: Services) -> None:
    from content.publisher.service import publish_all_due

    rewards, membership, content = services["rewards"], services["membership"], services["content"]
    owner = membership.auth(CHECK_IN_MERCHANT)
    created = await rewards.client.post(
        "/v1/earn-rules",
        json={"kind": "check_in", "name": "daily check-in", "points": 10, "daily_limit": 1},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    group = await membership.client.post("/v1/groups", json={"name": "辅食新手群"}, headers=owner)
    group_id = group.json()["id"]
    joined = await membership.client.post(
        f"/v1/groups/{group_id}/members", json={"customer_id": "fan"}, headers=owner
    )
    assert joined.status_code in {200, 201}, joined.text

    async def check_in_call_published() -> str | None:
        post = await content.client.post(
            "/v1/posts",
            json={
                "kind": "check_in_call",
                "title": "今日打卡",
                "group_ids": [group_id],
                "schedule": {"kind": "now"},
            },
            headers=owner,
        )
        if post.status_code != 201:  # content has not yet heard of the group from membership's events
            return None
        await publish_all_due(content.uow)
        return str(post.json()["id"])

    post_id = await pump_until(services, check_in_call_published)
    fan = content.auth(CHECK_IN_MERCHANT, role="customer", customer_id="fan")
    for body in ("第一天打卡!", "again, same day"):
        comment = await content.client.post(
            f"/v1/posts/{post_id}/comments", json={"kind": "check_in", "body": body}, headers=fan
        )
        assert comment.status_code == 201, comment.text

    async def fan_points() -> int:
        balance = await rewards.client.get("/v1/customers/fan/balance", headers=owner)
        return int(balance.json()["points"]) if balance.status_code == 200 else -1

    assert await pump_until(services, lambda: _equals(fan_points(), 10)) is True
    for _ in range(3):  # more rounds move nothing more: the daily cap holds
        await pump_until(services, lambda: _equals(fan_points(), 10))
    stranger = content.auth(CHECK_IN_MERCHANT, role="customer", customer_id="not-a-member")
    refused = await content.client.post(
        f"/v1/posts/{post_id}/comments", json={"kind": "check_in", "body": "hi"}, headers=stranger
    )
    assert refused.status_code in {403, 404, 422}, refused.text

    # The fan likes the call too; segments, hearing it all through Kafka, counts the group's day.
    liked = await content.client.post(f"/v1/posts/{post_id}/likes", headers=fan)
    assert liked.status_code == 201, liked.text
    segments, today = services["segments"], datetime.now(UTC).date().isoformat()

    async def todays_metrics() -> dict[str, Any] | None:
        response = await segments.client.get(
            f"/v1/groups/{group_id}/metrics", params={"from": today, "to": today}, headers=owner
        )
        day: dict[str, Any] = response.json()["days"][0]
        return day if day["likes"] == 1 and day["check_ins"] == 2 else None

    day = await pump_until(services, todays_metrics)
    assert (day["size"], day["new_members"], day["daily_active_members"]) == (1, 1, 1)
