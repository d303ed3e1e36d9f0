"""Demo data for `make run`: a merchant whose customers bought, favourited and joined groups.

It goes in the way real data does — as events on the commerce topics — so every service builds its
own view from them, exactly as in production.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from meadow_contracts import CustomerProfileUpdated, Envelope, Event, OrderPaid, ProductFavorited, Topic
from meadow_contracts.events import OrderLine
from meadow_runtime.kafka import create_producer
from meadow_runtime.settings import Settings

MERCHANT = "demo-merchant"
CATALOG = [
    ("p-milk-1", "milk_powder", 26900),
    ("p-milk-2", "milk_powder", 31900),
    ("p-food-1", "baby_food", 4900),
    ("p-stroller", "stroller", 129900),
    ("p-diaper", "diapers", 9900),
]


def demo_events(customers: int = 50, seed: int = 7) -> list[Envelope]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    envelopes: list[Envelope] = []

    def add(event: Event, customer: str) -> None:
        envelopes.append(Envelope.wrap(event, source="demo", merchant_id=MERCHANT, subject=customer))

    for n in range(customers):
        customer = f"cust-{n:03d}"
        add(
            CustomerProfileUpdated(
                customer_id=customer,
                gender=rng.choice(["female", "female", "male"]),
                birth_year=rng.randint(1985, 2000),
                city=rng.choice(["Shanghai", "Hangzhou", "Chengdu", "Beijing"]),
                channel=rng.choice(["tmall", "taobao", "wechat"]),
            ),
            customer,
        )
        for order in range(rng.randint(0, 4)):
            product, category, price = rng.choice(CATALOG)
            add(
                OrderPaid(
                    order_id=f"{customer}-o{order}",
                    customer_id=customer,
                    lines=(
                        OrderLine(
                            line_id="1", product_id=product, category=category, quantity=1, amount_minor=price
                        ),
                    ),
                    paid_at=now - timedelta(days=rng.randint(0, 200)),
                ),
                customer,
            )
        if rng.random() < 0.4:
            product, category, _ = rng.choice(CATALOG)
            add(
                ProductFavorited(
                    customer_id=customer, product_id=product, category=category, favorited_at=now
                ),
                customer,
            )
    return envelopes


def merchant_setup() -> list[tuple[str, str, dict[str, Any]]]:
    """What a merchant configures on day one, as (service, path, body), through the public APIs."""
    return [
        (
            "rewards",
            "/v1/earn-rules",
            {"kind": "purchase", "name": "1 point per yuan", "points_per_unit": "1"},
        ),
        ("rewards", "/v1/earn-rules", {"kind": "join_group", "name": "welcome to the group", "points": 50}),
        (
            "rewards",
            "/v1/earn-rules",
            {"kind": "check_in", "name": "daily check-in", "points": 5, "daily_limit": 1},
        ),
        (
            "rewards",
            "/v1/earn-rules",
            {"kind": "buyer_show", "name": "buyer show", "points": 30, "daily_limit": 3},
        ),
        (
            "rewards",
            "/v1/tiers",
            {"name": "银卡 Silver", "rank": 1, "threshold_points": 500, "multiplier": "1.2"},
        ),
        (
            "rewards",
            "/v1/tiers",
            {"name": "金卡 Gold", "rank": 2, "threshold_points": 2000, "multiplier": "1.5"},
        ),
        (
            "rewards",
            "/v1/rewards",
            {"name": "婴儿湿巾 wipes", "points_price": 300, "stock": 100, "per_customer_limit": 2},
        ),
        (
            "segments",
            "/v1/segments",
            {
                "key": "milk-powder-regulars",
                "name": "Milk powder regulars",
                "rule": {"kind": "purchased", "category": "milk_powder", "within_days": 180, "min_count": 2},
            },
        ),
        (
            "membership",
            "/v1/groups",
            {
                "name": "奶粉老客群",
                "purpose": "repeat milk-powder buyers",
                "join_rules": {"required_segments": ["lifecycle:repurchase"]},
                "categories": ["milk_powder"],
            },
        ),
        (
            "membership",
            "/v1/groups",
            {"name": "辅食新手群", "purpose": "first baby food", "categories": ["baby_food"]},
        ),
        ("membership", "/v1/groups", {"name": "孕期准妈群", "purpose": "expecting mothers"}),
    ]


async def load_demo_data(urls: dict[str, str], token: str, settings: Settings) -> str:
    """Configure the demo merchant through the APIs, then send its order history as events."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        # The dev databases outlive a `make run`; a second run keeps what the first one loaded.
        existing_tiers = await client.get(f"{urls['rewards']}/v1/tiers")
        existing_tiers.raise_for_status()
        if existing_tiers.json():
            return f"merchant {MERCHANT}: kept from an earlier run (`make clean` starts from nothing)"
        for service, path, body in merchant_setup():
            response = await client.post(f"{urls[service]}{path}", json=body)
            if response.status_code >= 300:
                raise RuntimeError(
                    f"demo setup {service} {path} failed: {response.status_code} {response.text}"
                )
            if service == "membership":
                group_id = response.json()["id"]
                await _join_and_post(client, urls, group_id)
    envelopes = demo_events()
    producer = create_producer(settings)
    await producer.start()
    try:
        for envelope in envelopes:
            topic = (
                Topic.COMMERCE_ORDERS
                if envelope.type.startswith("commerce.orders")
                else Topic.COMMERCE_CUSTOMERS
            )
            await producer.send(settings.topic(topic.value), envelope.to_bytes(), key=envelope.key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return (
        f"merchant {MERCHANT}: earn rules, tiers, a reward, a segment, 3 groups with members and posts; "
        f"{len(envelopes)} commerce events published"
    )


async def _join_and_post(client: httpx.AsyncClient, urls: dict[str, str], group_id: str) -> None:
    """Open groups get a few members; every group gets a check-in call and a product poll."""
    for n in range(5):
        # A gated group refuses these customers (their segments arrive with the orders later): that is fine.
        await client.post(
            f"{urls['membership']}/v1/groups/{group_id}/members", json={"customer_id": f"cust-{n:03d}"}
        )
    posts = [
        {
            "kind": "check_in_call",
            "title": "今日打卡 daily check-in",
            "group_ids": [group_id],
            "schedule": {"kind": "now"},
        },
        {
            "kind": "poll",
            "title": "下一款新品? Which flavour next?",
            "group_ids": [group_id],
            "poll": {
                "options": [{"id": "apple", "label": "苹果 apple"}, {"id": "pear", "label": "雪梨 pear"}]
            },
            "schedule": {"kind": "now"},
        },
    ]
    # Push rules for the group in content: at most 3 posts a day, quiet at night.
    settings = await client.put(
        f"{urls['content']}/v1/groups/{group_id}/settings", json={"max_posts_per_day": 3}
    )
    if settings.status_code >= 300:
        raise RuntimeError(f"demo group settings refused: {settings.status_code} {settings.text}")
    for post in posts:
        response = await client.post(f"{urls['content']}/v1/posts", json=post)
        if response.status_code >= 300:
            raise RuntimeError(f"demo post refused: {response.status_code} {response.text}")
