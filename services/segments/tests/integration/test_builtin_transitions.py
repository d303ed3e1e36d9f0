"""A customer's events drive the built-in segments through their transitions, one event per change."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from uuid import uuid4

from segments_test_events import commented, invite_accepted, joined, order_paid, order_refunded, profile
from segments_test_events import feed as consume
from sqlalchemy import text

from meadow_contracts import Envelope, Topic
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually

THIRTY_YEARS_AGO = datetime.now(UTC).year - 30  # age 30: the 25-34 band, whatever year the test runs in


async def feed(svc: ServiceHarness, settings: Settings, *envelopes: Envelope) -> None:
    await consume(svc, settings, *envelopes)
    await svc.publish_outbox()


def changes(envelopes: list[Envelope], customer: str) -> list[tuple[str, str]]:
    """(event kind, segment key or stage) for one customer, in publication order."""
    found = []
    for e in envelopes:
        if e.data.get("customer_id") != customer:
            continue
        if e.type.endswith("segment_entered.v1"):
            found.append(("entered", e.data["segment_key"]))
        elif e.type.endswith("segment_exited.v1"):
            found.append(("exited", e.data["segment_key"]))
        elif e.type.endswith("customer_lifecycle_changed.v1"):
            found.append(("lifecycle", f"{e.data['old_stage']}->{e.data['new_stage']}"))
    return found


async def memberships(svc: ServiceHarness, merchant: str, customer: str) -> set[str]:
    response = await svc.client.get(f"/v1/customers/{customer}", headers=svc.auth(merchant))
    assert response.status_code == 200, response.text
    return {s["key"] for s in response.json()["segments"]}


async def test_lifecycle_and_tags_follow_the_customers_events(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = "m-life", f"c-{uuid4()}"
    first = order_paid(merchant, customer, ("p1", "formula", 15_000))
    second = order_paid(merchant, customer, ("p2", "diapers", 90_000))
    script = [
        profile(merchant, customer, gender="female", birth_year=THIRTY_YEARS_AGO, size="M", channel="tmall"),
        first,
        second,
        order_refunded(merchant, first),
        order_refunded(merchant, second, complaint=True),
    ]
    async with TopicReader(settings, Topic.SEGMENTS.value) as reader:
        await feed(svc, settings, script[0])
        assert await memberships(svc, merchant, customer) == {
            "tag:gender:female",
            "tag:age_band:25-34",
            "tag:size:M",
            "tag:channel:tmall",
        }
        await feed(svc, settings, script[1])
        assert {"lifecycle:new", "tag:preference:formula", "tag:spending_power:low"} <= await memberships(
            svc, merchant, customer
        )
        await feed(svc, settings, script[2])
        after_second = await memberships(svc, merchant, customer)
        assert "lifecycle:repurchase" in after_second
        assert "lifecycle:new" not in after_second
        assert "tag:spending_power:high" in after_second
        await feed(svc, settings, *script[3:])
        final = await memberships(svc, merchant, customer)
        assert "lifecycle:problem" in final
        assert "lifecycle:repurchase" not in final

        seen = changes(await _settle(reader, customer, ("lifecycle", "repurchase->problem")), customer)
        lifecycle = [c for c in seen if c[0] == "lifecycle" or c[1].startswith("lifecycle:")]
        assert lifecycle == [
            ("entered", "lifecycle:new"),
            ("lifecycle", "prospect->new"),
            ("exited", "lifecycle:new"),
            ("entered", "lifecycle:repurchase"),
            ("lifecycle", "new->repurchase"),
            ("exited", "lifecycle:repurchase"),
            ("entered", "lifecycle:problem"),
            ("lifecycle", "repurchase->problem"),
        ]
        # Every segment alternates entered/exited: never two of the same in a row.
        last: dict[str, str] = {}
        for kind, key in seen:
            if kind != "lifecycle":
                assert last.get(key) != kind, f"{key} got {kind} twice"
                last[key] = kind
        assert {k for k, kind in last.items() if kind == "entered"} == final

        # Replaying every event (the same ids) changes nothing and emits nothing.
        before = len(reader.records)
        await feed(svc, settings, *script)
        assert await svc.publish_outbox() == 0
        await reader.read_available()
        assert len(reader.records) == before
        assert await memberships(svc, merchant, customer) == final


async def _settle(reader: TopicReader, customer: str, last: tuple[str, str]) -> list[Envelope]:
    """Read until `last` arrived: one customer's events share a partition, so all before it are in."""

    async def read() -> list[Envelope]:
        await reader.read_available()
        return reader.envelopes()

    return await eventually(read, until=lambda envelopes: last in changes(envelopes, customer))


async def test_advocacy_fans_spreaders_and_distributors(svc: ServiceHarness, settings: Settings) -> None:
    merchant = "m-adv"
    fan, friend = f"fan-{uuid4()}", f"friend-{uuid4()}"
    group = str(uuid4())
    await feed(svc, settings, joined(merchant, fan, group), commented(merchant, fan, group))
    assert "advocacy:fan" in await memberships(svc, merchant, fan)
    await feed(svc, settings, invite_accepted(merchant, fan, friend, group))
    assert {"advocacy:fan", "advocacy:spreader"} <= await memberships(svc, merchant, fan)
    assert "advocacy:distributor" not in await memberships(svc, merchant, fan)
    await feed(svc, settings, order_paid(merchant, friend))
    assert "advocacy:distributor" in await memberships(svc, merchant, fan)


async def test_duplicated_events_in_one_batch_emit_once(svc: ServiceHarness, settings: Settings) -> None:
    merchant, customer = "m-dup", f"c-{uuid4()}"
    paid = order_paid(merchant, customer)
    await feed(svc, settings, paid, paid, paid)
    # The same order under a new event id (a re-sent order) is still one order: nothing new either.
    await feed(svc, settings, Envelope(**{**paid.model_dump(), "id": uuid4()}))
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT type, payload FROM outbox WHERE aggregateid = :key ORDER BY created_at"),
            {"key": f"{merchant}:{customer}"},
        )
        emitted = [Envelope.model_validate(row.payload) for row in rows]
    counts = Counter(changes(emitted, customer))
    assert counts[("entered", "lifecycle:new")] == 1
    assert counts[("lifecycle", "prospect->new")] == 1
    assert all(n == 1 for n in counts.values()), counts


async def test_profile_updates_in_one_batch_apply_in_order(svc: ServiceHarness, settings: Settings) -> None:
    merchant, customer = "m-profile", f"c-{uuid4()}"
    await feed(
        svc,
        settings,
        profile(merchant, customer, gender="female", size="S"),
        profile(merchant, customer, city="sh"),
        profile(merchant, customer, gender="male"),
    )
    view = await svc.client.get(f"/v1/customers/{customer}", headers=svc.auth(merchant))
    assert view.json()["profile"] | {"birth_year": None} == {
        "gender": "male",
        "birth_year": None,
        "age_band": None,
        "city": "sh",
        "size": "S",
        "channel": None,
    }
    assert view.json()["tags"] == {"gender": ["male"], "size": ["S"]}


async def test_a_known_customers_profile_change_is_evaluated_and_a_resent_profile_is_not(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = "m-profile", f"c-{uuid4()}"
    await feed(svc, settings, profile(merchant, customer, gender="female", city="sh"))
    await feed(svc, settings, profile(merchant, customer, gender="male", city="sh"))
    assert {k for k in await memberships(svc, merchant, customer) if k.startswith("tag:gender")} == {
        "tag:gender:male"
    }
    async with svc.uow() as uow:
        resent = {"customer_id": customer, "gender": "male", "birth_year": None, "city": "sh"}
        resent |= {"size": None, "channel": None}
        assert await uow.facts.update_profiles(merchant, [resent]) == set()
        assert await uow.facts.update_profiles(merchant, [resent | {"size": "L"}]) == {customer}
        await uow.rollback()
