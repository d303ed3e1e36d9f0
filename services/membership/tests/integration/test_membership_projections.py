"""Join rules evaluated on projections of segment and tier events from Kafka, in whatever order they come."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from meadow_contracts import Envelope, SegmentEntered, SegmentExited, TierChanged, Topic
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import produce

T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)
MILK = UUID("00000000-0000-0000-0000-00000000a001")


def segment(customer: str, key: str, *, entered: bool, at: datetime, merchant: str = "m1") -> Envelope:
    event: SegmentEntered | SegmentExited
    if entered:
        event = SegmentEntered(segment_id=MILK, segment_key=key, customer_id=customer, entered_at=at)
    else:
        event = SegmentExited(segment_id=MILK, segment_key=key, customer_id=customer, exited_at=at)
    return Envelope.wrap(event, source="segments", merchant_id=merchant, subject=customer)


def tier(customer: str, rank: int, at: datetime) -> Envelope:
    event = TierChanged(
        customer_id=customer,
        old_tier=None,
        new_tier=f"vip{rank}",
        new_rank=rank,
        direction="up",
        changed_at=at,
    )
    return Envelope.wrap(event, source="rewards", merchant_id="m1", subject=customer)


async def deliver(svc: ServiceHarness, topic: Topic, *envelopes: Envelope) -> None:
    await produce(svc.settings, topic.value, *envelopes)
    await svc.consume()


async def joinable(svc: ServiceHarness, customer: str) -> set[str]:
    response = await svc.client.get(
        "/v1/eligibility", params={"customer_id": customer}, headers=svc.auth("m1", "customer", customer)
    )
    assert response.status_code == 200, response.text
    return {g["group_id"] for g in response.json()["groups"]}


async def test_refused_join_names_the_failed_rule_until_the_segment_event_arrives(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(join_rules={"required_segments": ["bought:milk-powder"]})
    refused = await join(group["id"], "p1")
    assert refused.status_code == 409
    assert refused.json()["reason"] == "not_eligible"
    assert refused.json()["failed_rules"][0]["rule"] == "required_segments"
    assert refused.json()["failed_rules"][0]["segments"] == ["bought:milk-powder"]

    await deliver(svc, Topic.SEGMENTS, segment("p1", "bought:milk-powder", entered=True, at=T0))

    assert group["id"] in await joinable(svc, "p1")
    assert (await join(group["id"], "p1")).status_code == 200


async def test_late_older_segment_event_does_not_undo_a_newer_one(
    svc: ServiceHarness, create_group: Any
) -> None:
    group = await create_group(join_rules={"required_segments": ["bought:formula"]})
    # Exit at T0+2h arrives first; the entry at T0+1h arrives late and must be ignored.
    await deliver(
        svc, Topic.SEGMENTS, segment("p2", "bought:formula", entered=False, at=T0 + timedelta(hours=2))
    )
    await deliver(
        svc, Topic.SEGMENTS, segment("p2", "bought:formula", entered=True, at=T0 + timedelta(hours=1))
    )
    assert group["id"] not in await joinable(svc, "p2")

    # A genuinely newer entry does count.
    await deliver(
        svc, Topic.SEGMENTS, segment("p2", "bought:formula", entered=True, at=T0 + timedelta(hours=3))
    )
    assert group["id"] in await joinable(svc, "p2")


async def test_duplicated_and_replayed_events_change_nothing(svc: ServiceHarness, create_group: Any) -> None:
    group = await create_group(join_rules={"excluded_segments": ["lifecycle:problem"]})
    entered = segment("p3", "lifecycle:problem", entered=True, at=T0)
    exited = segment("p3", "lifecycle:problem", entered=False, at=T0 + timedelta(minutes=5))
    await deliver(svc, Topic.SEGMENTS, entered, exited)
    assert group["id"] in await joinable(svc, "p3")

    # The same envelope again (the inbox drops it) and a replay of the entry under a new id (older: ignored).
    replayed_entry = Envelope.wrap(
        SegmentEntered(segment_id=MILK, segment_key="lifecycle:problem", customer_id="p3", entered_at=T0),
        source="segments", merchant_id="m1", subject="p3", id=uuid4(),
    )  # fmt: skip
    await deliver(svc, Topic.SEGMENTS, entered, replayed_entry)
    assert group["id"] in await joinable(svc, "p3")


async def test_tier_gate_follows_the_newest_tier_event(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(join_rules={"min_tier_rank": 2})
    await deliver(
        svc, Topic.REWARDS, tier("p4", 3, T0 + timedelta(days=2)), tier("p4", 1, T0 + timedelta(days=1))
    )
    assert group["id"] in await joinable(svc, "p4")

    await deliver(svc, Topic.REWARDS, tier("p4", 1, T0 + timedelta(days=3)))
    refused = await join(group["id"], "p4")
    assert refused.status_code == 409
    assert refused.json()["failed_rules"] == [
        {
            "rule": "min_tier_rank",
            "detail": refused.json()["failed_rules"][0]["detail"],
            "required_tier_rank": 2,
        }
    ]


async def test_other_merchants_facts_do_not_leak(svc: ServiceHarness, create_group: Any) -> None:
    group = await create_group(join_rules={"required_segments": ["fans"]})
    await deliver(svc, Topic.SEGMENTS, segment("p5", "fans", entered=True, at=T0, merchant="m2"))
    assert group["id"] not in await joinable(svc, "p5")
