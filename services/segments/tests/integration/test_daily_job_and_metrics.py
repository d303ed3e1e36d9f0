"""The daily job applies time-based transitions once; group metrics count what happened per day."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from uuid import uuid4

from segments_test_events import commented, feed, joined, liked, order_paid
from sqlalchemy import text

from meadow_contracts import Topic
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually
from segments.insights.repository import InsightsRepository
from segments.jobs import reevaluate_merchant


async def test_new_customers_become_non_repurchase_after_the_window_once(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = "m-daily", f"c-{uuid4()}"
    await feed(svc, settings, order_paid(merchant, customer))
    await svc.publish_outbox()
    async with TopicReader(settings, Topic.SEGMENTS.value) as reader:
        later = datetime.now(UTC) + timedelta(days=91)
        assert await reevaluate_merchant(svc.uow, merchant, now=later) > 0
        assert await reevaluate_merchant(svc.uow, merchant, now=later) == 0
        await svc.publish_outbox()
        # One customer's events share a partition, in order: the lifecycle change is written last.
        await eventually(
            reader.read_available,
            until=lambda records: any(
                b"non_repurchase" in (r.value or b"")
                and customer.encode() in (r.value or b"")
                and b"lifecycle_changed" in (r.value or b"")
                for r in records
            ),
        )
        seen = Counter(
            (e.type.split(".")[1], e.data.get("segment_key") or e.data.get("new_stage"))
            for e in reader.envelopes()
            if e.data["customer_id"] == customer
        )
    assert seen[("segment_exited", "lifecycle:new")] == 1
    assert seen[("segment_entered", "lifecycle:non_repurchase")] == 1
    assert seen[("customer_lifecycle_changed", "non_repurchase")] == 1
    # RFM quintiles were refreshed first, so the customer now has scores.
    assert {k for _, k in seen if k and k.startswith("rfm:")} == {"rfm:r:1", "rfm:f:1", "rfm:m:1"}
    view = await svc.client.get(f"/v1/customers/{customer}", headers=svc.auth(merchant))
    assert view.json()["lifecycle"] == "non_repurchase"
    assert view.json()["rfm"] == {"r": 1, "f": 1, "m": 1}


async def test_group_metrics_per_day(svc: ServiceHarness, settings: Settings) -> None:
    merchant, group = "m-metrics", str(uuid4())
    member, lurker, outsider = (f"{n}-{uuid4()}" for n in ("member", "lurker", "outsider"))
    await feed(
        svc,
        settings,
        joined(merchant, member, group),
        joined(merchant, lurker, group),
        commented(merchant, member, group),
        commented(merchant, member, group, kind="check_in"),
        liked(merchant, member, group),
        liked(merchant, lurker, group),
        order_paid(merchant, member, ("p", "formula", 3000)),
        order_paid(merchant, outsider, ("p", "formula", 1000)),
        order_paid(merchant, outsider, ("p", "formula", 2000)),
    )
    today = datetime.now(UTC).date()
    response = await svc.client.get(
        f"/v1/groups/{group}/metrics",
        params={"from": str(today - timedelta(days=1)), "to": str(today)},
        headers=svc.auth(merchant),
    )
    assert response.status_code == 200, response.text
    yesterday, day = response.json()["days"]
    assert yesterday["size"] == 0
    assert day["size"] == 2
    assert day["new_members"] == 2
    assert day["daily_active_members"] == 2, "a like is activity too"
    assert day["comments"] == 1
    assert day["check_ins"] == 1
    assert day["likes"] == 2
    assert day["member_conversion_rate"] == 0.5
    assert day["member_aov_minor"] == 3000
    assert day["non_member_aov_minor"] == 1500
    assert day["non_member_conversion_rate"] == 1.0
    assert day["revisit_rate"] is None, "today's 7 days to come back have not passed"

    other = await svc.client.get(f"/v1/groups/{group}/metrics", headers=svc.auth("m-else"))
    assert all(d["size"] == 0 and d["comments"] == 0 for d in other.json()["days"])
    backwards = await svc.client.get(
        f"/v1/groups/{group}/metrics",
        params={"from": str(today), "to": str(today - timedelta(days=3))},
        headers=svc.auth(merchant),
    )
    assert backwards.status_code == 422


DAY = date(2026, 1, 10)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


async def metrics_of(svc: ServiceHarness, merchant: str, group: str, first: date, last: date) -> list[dict]:
    response = await svc.client.get(
        f"/v1/groups/{group}/metrics",
        params={"from": str(first), "to": str(last)},
        headers=svc.auth(merchant),
    )
    assert response.status_code == 200, response.text
    days: list[dict] = response.json()["days"]
    return days


async def test_buyers_are_split_by_membership_at_the_days_end_like_the_size(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, group = f"m-{uuid4()}", str(uuid4())
    member, joins_after_buying, outsider = (f"{n}-{uuid4()}" for n in ("member", "late", "outsider"))
    await feed(
        svc,
        settings,
        order_paid(merchant, outsider, ("p", "formula", 500), at=at(DAY - timedelta(days=5), 12)),
        joined(merchant, member, group, at=at(DAY, 8)),
        order_paid(merchant, joins_after_buying, ("p", "formula", 4000), at=at(DAY, 9)),
        joined(merchant, joins_after_buying, group, at=at(DAY, 10)),
    )
    [day] = await metrics_of(svc, merchant, group, DAY, DAY)
    assert day["size"] == 2
    assert day["member_conversion_rate"] == 0.5, "one of the day's two members bought"
    assert day["member_aov_minor"] == 4000
    assert day["non_member_conversion_rate"] == 0.0, "the one other customer bought nothing"
    assert day["non_member_aov_minor"] is None


async def test_revisits_count_the_seven_days_after_a_day(svc: ServiceHarness, settings: Settings) -> None:
    merchant, group = f"m-{uuid4()}", str(uuid4())
    back_in_three_days, back_in_eight_days = (f"{n}-{uuid4()}" for n in ("three", "eight"))
    await feed(
        svc,
        settings,
        joined(merchant, back_in_three_days, group, at=at(DAY, 8)),
        joined(merchant, back_in_eight_days, group, at=at(DAY, 8)),
        commented(merchant, back_in_three_days, group, at=at(DAY, 12)),
        commented(merchant, back_in_eight_days, group, at=at(DAY, 12)),
        commented(merchant, back_in_three_days, group, at=at(DAY + timedelta(days=3), 12)),
        commented(merchant, back_in_eight_days, group, at=at(DAY + timedelta(days=8), 0, 30)),
    )
    days = await metrics_of(svc, merchant, group, DAY, DAY + timedelta(days=3))
    assert days[0]["daily_active_members"] == 2
    assert days[0]["revisit_rate"] == 0.5, "back within the 7 days after: one of two"
    assert days[1]["revisit_rate"] is None, "nobody active that day"
    assert days[3]["revisit_rate"] == 0.0


async def test_days_are_utc_days_whatever_the_sessions_time_zone(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, group, customer = f"m-{uuid4()}", str(uuid4()), f"c-{uuid4()}"
    summer_time_starts = date(2024, 3, 31)  # in Europe/Berlin: a 23-hour day
    await feed(
        svc,
        settings,
        joined(merchant, customer, group, at=at(summer_time_starts, 8)),
        commented(merchant, customer, group, at=at(summer_time_starts, 23, 30)),
    )
    async with svc.uow() as uow:
        await uow.session.execute(text("SET LOCAL timezone = 'Europe/Berlin'"))
        days = await InsightsRepository(uow.session).group_days(
            merchant, group, summer_time_starts, summer_time_starts + timedelta(days=1)
        )
    assert [(d["day"], d["comments"]) for d in days] == [
        (summer_time_starts, 1),
        (summer_time_starts + timedelta(days=1), 0),
    ]


async def test_the_customer_360_does_not_wait_for_a_batch_holding_the_customer(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = f"m-{uuid4()}", f"c-{uuid4()}"
    await feed(svc, settings, order_paid(merchant, customer))
    async with svc.uow() as batch:  # as a consumer re-evaluating the customer holds its row
        await batch.facts.load(merchant, [customer])
        view = await asyncio.wait_for(
            svc.client.get(f"/v1/customers/{customer}", headers=svc.auth(merchant)), timeout=30
        )
        await batch.rollback()
    assert view.status_code == 200, view.text
    assert view.json()["purchases"]["orders"] == 1
