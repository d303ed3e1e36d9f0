"""Saved segments over HTTP: validation with pointers, incremental vs SQL agreement, tenancy, ingest, DLQ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from segments_test_events import favorited, feed, members, order_paid, profile
from sqlalchemy import text

from meadow_contracts import Envelope, Topic
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually, produce
from segments.definitions.service import matching_customers
from segments.domain.rules import parse_rule

FORMULA_FANS = {
    "kind": "all",
    "all": [
        {"kind": "profile", "field": "gender", "op": "eq", "value": "female"},
        {"kind": "purchased", "category": "formula", "within_days": 90, "min_count": 2},
        {"kind": "not", "not": {"kind": "favorited", "product_id": "rival"}},
    ],
}


async def test_invalid_rules_are_refused_with_a_pointer_to_the_bad_node(svc: ServiceHarness) -> None:
    bad = {
        "kind": "all",
        "all": [
            {"kind": "profile", "field": "gender", "op": "eq", "value": "female"},
            {"kind": "purchased", "category": "formula", "colour": "red"},
            {"kind": "purchased", "min_count": 3, "max_count": 1},
            {"kind": "in_segment", "segment": "no-such-segment"},
        ],
    }
    body = {"key": "bad", "name": "Bad", "rule": bad}
    response = await svc.client.post("/v1/segments", json=body, headers=svc.auth("m-val"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/rule/all/1/colour", "/rule/all/2/max_count"}

    body["rule"] = {"kind": "any", "any": [{"kind": "in_segment", "segment": "no-such-segment"}]}
    response = await svc.client.post("/v1/segments", json=body, headers=svc.auth("m-val"))
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/rule/any/0/segment"]

    body["rule"] = {"kind": "not", "not": {"kind": "teleported"}}
    response = await svc.client.post("/v1/segments", json=body, headers=svc.auth("m-val"))
    assert [e["pointer"] for e in response.json()["errors"]] == ["/rule/not/kind"]

    listed = await svc.client.get("/v1/segments", headers=svc.auth("m-val"))
    assert listed.json() == []


async def test_a_segment_cannot_depend_on_itself(svc: ServiceHarness) -> None:
    headers = svc.auth("m-cycle")
    first = {"key": "a", "name": "A", "rule": {"kind": "lifecycle", "stage": "new"}}
    assert (await svc.client.post("/v1/segments", json=first, headers=headers)).status_code == 201
    second = {"key": "b", "name": "B", "rule": {"kind": "in_segment", "segment": "a"}}
    assert (await svc.client.post("/v1/segments", json=second, headers=headers)).status_code == 201
    loop = {"name": "A", "rule": {"kind": "any", "any": [{"kind": "in_segment", "segment": "b"}]}}
    response = await svc.client.put("/v1/segments/a", json=loop, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/rule/any/0/segment"
    assert (await svc.client.delete("/v1/segments/a", headers=headers)).status_code == 409


async def test_incremental_evaluation_agrees_with_the_sql_recompute(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant = "m-agree"
    headers = svc.auth(merchant)
    body = {"key": "formula-fans", "name": "Formula fans", "rule": FORMULA_FANS}
    created = await svc.client.post("/v1/segments", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["member_count"] == 0

    ann, bea, cat, dan = (f"{n}-{uuid4()}" for n in ("ann", "bea", "cat", "dan"))
    old = datetime.now(UTC) - timedelta(days=200)
    await feed(
        svc,
        settings,
        profile(merchant, ann, gender="female"),
        order_paid(merchant, ann, ("f1", "formula", 100)),
        order_paid(merchant, ann, ("f2", "formula", 100)),
        profile(merchant, bea, gender="female"),
        order_paid(merchant, bea, ("f1", "formula", 100)),
        order_paid(merchant, bea, ("f1", "formula", 100), at=old),
        profile(merchant, cat, gender="female"),
        order_paid(merchant, cat, ("f1", "formula", 100)),
        order_paid(merchant, cat, ("f1", "formula", 100)),
        favorited(merchant, cat, "rival", "formula"),
        profile(merchant, dan, gender="male"),
        order_paid(merchant, dan, ("f1", "formula", 100)),
        order_paid(merchant, dan, ("f1", "formula", 100)),
    )
    incremental = await members(svc, merchant, "formula-fans")
    assert incremental == {ann}

    async with svc.uow() as uow:
        by_sql = set(await matching_customers(uow, merchant, parse_rule(FORMULA_FANS), datetime.now(UTC)))
    assert by_sql == incremental

    recomputed = await svc.client.post("/v1/segments/formula-fans/recompute", headers=headers)
    assert recomputed.json() == {"segment_key": "formula-fans", "entered": 0, "exited": 0, "member_count": 1}

    preview = await svc.client.post("/v1/segments/preview", json={"rule": FORMULA_FANS}, headers=headers)
    assert preview.json() == {"count": 1, "sample": [ann]}

    # Changing the rule recomputes it with SQL and emits the differences.
    looser = {"name": "Formula buyers", "rule": {"kind": "purchased", "category": "formula"}}
    async with TopicReader(settings, Topic.SEGMENTS.value) as reader:
        updated = await svc.client.put("/v1/segments/formula-fans", json=looser, headers=headers)
        assert updated.status_code == 200, updated.text
        assert updated.json()["entered"] == 3
        await svc.publish_outbox()
        envelopes = await reader.wait_for(1)
        entered = {
            e.data["customer_id"]
            for e in envelopes
            if e.type.endswith("segment_entered.v1") and e.data["segment_key"] == "formula-fans"
        }
        assert entered >= {bea, cat, dan}
    assert await members(svc, merchant, "formula-fans") == {ann, bea, cat, dan}


async def test_merchants_never_see_each_others_data(svc: ServiceHarness, settings: Settings) -> None:
    customer = f"shared-{uuid4()}"
    await feed(svc, settings, order_paid("m-one", customer))
    body = {"key": "buyers", "name": "Buyers", "rule": {"kind": "purchased"}}
    assert (await svc.client.post("/v1/segments", json=body, headers=svc.auth("m-one"))).status_code == 201

    other = svc.auth("m-two")
    assert (await svc.client.get("/v1/segments/buyers", headers=other)).status_code == 404
    assert (await svc.client.get("/v1/segments/buyers/members", headers=other)).status_code == 404
    assert (await svc.client.get(f"/v1/customers/{customer}", headers=other)).status_code == 404
    lifecycle = await svc.client.get("/v1/segments/lifecycle:new/members", headers=other)
    assert customer not in {i["customer_id"] for i in lifecycle.json()["items"]}
    preview = await svc.client.post(
        "/v1/segments/preview", json={"rule": {"kind": "purchased"}}, headers=other
    )
    assert preview.json()["count"] == 0
    # The same key is free for another merchant.
    assert (await svc.client.post("/v1/segments", json=body, headers=other)).status_code == 201

    # A customer sees their own 360 view, not someone else's.
    own = svc.auth("m-one", role="customer", customer_id=customer)
    assert (await svc.client.get(f"/v1/customers/{customer}", headers=own)).status_code == 200
    assert (await svc.client.get("/v1/customers/someone-else", headers=own)).status_code == 403


async def test_malformed_events_go_to_the_dlq_and_write_nothing(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = "m-dlq", f"c-{uuid4()}"
    broken = Envelope(
        type="commerce.orders.order_paid.v1",
        source="shop",
        merchant_id=merchant,
        subject=customer,
        data={"order_id": "o-bad", "customer_id": customer, "lines": [], "paid_at": "yesterday"},
    )
    async with TopicReader(settings, Topic.COMMERCE_ORDERS.dlq) as dlq:
        await produce(settings, Topic.COMMERCE_ORDERS.value, broken, b"{not json")
        await svc.consume()
        dead = await eventually(dlq.read_available, until=lambda records: len(records) >= 2)
    assert {r.value for r in dead} == {broken.to_bytes(), b"{not json"}
    assert all(dict(r.headers).get("dlq.error") for r in dead)
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT count(*) FROM customers WHERE merchant_id = :m"), {"m": merchant}
        )
        assert rows.scalar_one() == 0


async def test_ingest_validates_publishes_once_and_feeds_the_consumer(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = "m-ingest", f"c-{uuid4()}"
    headers = svc.auth(merchant, role="operator")
    await svc.publish_outbox()  # earlier tests' events: out of the way, so this test counts only its own
    order = {
        "order_id": "o-ingest-1",
        "customer_id": customer,
        "paid_at": datetime.now(UTC).isoformat(),
        "lines": [
            {"line_id": "l1", "product_id": "p1", "category": "formula", "quantity": 1, "amount_minor": 500}
        ],
    }
    bad = {**order, "lines": [{**order["lines"][0], "amount_minor": -1}]}  # type: ignore[dict-item]
    refused = await svc.client.post("/v1/ingest/order_paid", json={"events": [order, bad]}, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/events/1/lines/0/amount_minor"

    foreign = {"merchant_id": "m-else", "data": order}
    refused = await svc.client.post("/v1/ingest/order_paid", json={"events": [foreign]}, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["pointer"] == "/events/0/merchant_id"
    assert await svc.publish_outbox() == 0

    first = await svc.client.post("/v1/ingest/order_paid", json={"events": [order]}, headers=headers)
    assert first.status_code == 202, first.text
    again = await svc.client.post("/v1/ingest/order_paid", json={"events": [order]}, headers=headers)
    assert again.json() == {"accepted": [], "duplicates": first.json()["accepted"]}
    assert await svc.publish_outbox() == 1

    async def stage() -> str | None:
        await svc.consume(idle_polls=1)
        response = await svc.client.get(f"/v1/customers/{customer}", headers=headers)
        return response.json()["lifecycle"] if response.status_code == 200 else None

    assert await eventually(stage, until=lambda s: s == "new") == "new"
    assert (
        await svc.client.post("/v1/ingest/teleported", json={"events": [order]}, headers=headers)
    ).status_code == 404


async def test_saving_is_idempotent_and_deleting_lets_members_exit(
    svc: ServiceHarness, settings: Settings
) -> None:
    merchant, customer = "m-idem", f"c-{uuid4()}"
    await feed(svc, settings, order_paid(merchant, customer))
    headers = {**svc.auth(merchant, role="operator"), "Idempotency-Key": "save-buyers-1"}
    body = {"key": "buyers", "name": "Buyers", "rule": {"kind": "purchased"}}
    first = await svc.client.post("/v1/segments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await svc.client.post("/v1/segments", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other_body = await svc.client.post("/v1/segments", json={**body, "name": "Other"}, headers=headers)
    assert other_body.status_code == 409
    support = svc.auth(merchant, role="support")
    assert (await svc.client.delete("/v1/segments/buyers", headers=support)).status_code == 403

    await svc.publish_outbox()
    async with TopicReader(settings, Topic.SEGMENTS.value) as reader:
        assert (await svc.client.delete("/v1/segments/buyers", headers=svc.auth(merchant))).status_code == 204
        await svc.publish_outbox()

        async def exits() -> list[Envelope]:
            await reader.read_available()
            return [
                e
                for e in reader.envelopes()
                if e.type.endswith("segment_exited.v1") and e.data["segment_key"] == "buyers"
            ]

        exited = await eventually(exits)
    assert [e.data["customer_id"] for e in exited] == [customer]
    assert str(exited[0].data["segment_id"]) == first.json()["id"]
    assert (
        await svc.client.get("/v1/segments/buyers/members", headers=svc.auth(merchant))
    ).status_code == 404
