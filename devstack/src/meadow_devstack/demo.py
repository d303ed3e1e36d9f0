"""Demo data for `make run`: a merchant whose customers bought, favourited and joined groups.

It goes in the way real data does — as events on the commerce topics — so every service builds its
own view from them, exactly as in production.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

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


async def load_demo_data(urls: dict[str, str], token: str, settings: Settings) -> str:
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
    return f"{len(envelopes)} commerce events for merchant {MERCHANT} published"
