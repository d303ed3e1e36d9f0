"""The daily job applies time-based transitions once; group metrics count what happened per day."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from segments_test_events import commented, feed, joined, liked, order_paid

from meadow_contracts import Topic
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually
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
    assert day["revisit_rate"] == 0.0

    other = await svc.client.get(f"/v1/groups/{group}/metrics", headers=svc.auth("m-else"))
    assert all(d["size"] == 0 and d["comments"] == 0 for d in other.json()["days"])
    backwards = await svc.client.get(
        f"/v1/groups/{group}/metrics",
        params={"from": str(today), "to": str(today - timedelta(days=3))},
        headers=svc.auth(merchant),
    )
    assert backwards.status_code == 422
