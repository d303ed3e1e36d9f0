"""Edge cases a review found: new customers and empty facts, dependents of a manual recompute, bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from segments_test_events import feed, members, profile
from sqlalchemy import text

from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness
from segments.jobs import refresh_rfm


async def test_a_customer_created_by_a_profile_update_enters_segments_that_hold_on_empty_facts(
    svc: ServiceHarness, settings: Settings
) -> None:
    """`not purchased` reads orders, not the profile: the new customer is still evaluated for it."""
    merchant = f"m-new-{uuid4()}"
    never_bought = {
        "key": "never-bought",
        "name": "Never bought",
        "rule": {"kind": "not", "not": {"kind": "purchased"}},
    }
    assert (
        await svc.client.post("/v1/segments", json=never_bought, headers=svc.auth(merchant))
    ).status_code == 201
    await feed(svc, settings, profile(merchant, "c-new", gender="female"))
    assert await members(svc, merchant, "never-bought") == {"c-new"}
    # the customer is known now: a profile change that touches nothing the rule reads changes nothing
    await feed(svc, settings, profile(merchant, "c-new", city="Hangzhou"))
    assert await members(svc, merchant, "never-bought") == {"c-new"}


async def test_a_manual_recompute_also_recomputes_the_segments_that_refer_to_it(svc: ServiceHarness) -> None:
    merchant = f"m-deps-{uuid4()}"
    headers = svc.auth(merchant)
    buyers = {"key": "formula-buyers", "name": "Buyers", "rule": {"kind": "purchased", "category": "formula"}}
    of_buyers = {
        "key": "of-buyers",
        "name": "Of buyers",
        "rule": {"kind": "in_segment", "segment": "formula-buyers"},
    }
    for body in (buyers, of_buyers):
        assert (await svc.client.post("/v1/segments", json=body, headers=headers)).status_code == 201
    async with svc.uow() as uow:  # a fact the consumer never saw: only a recompute can find it
        await uow.session.execute(
            text("INSERT INTO customers (merchant_id, customer_id) VALUES (:m, 'c1')"), {"m": merchant}
        )
        await uow.session.execute(
            text("INSERT INTO order_lines VALUES (:m, 'o1', 'l1', 'c1', 'p1', 'formula', 100, :at)"),
            {"m": merchant, "at": datetime.now(UTC)},
        )
        await uow.commit()
    recomputed = await svc.client.post("/v1/segments/formula-buyers/recompute", headers=headers)
    assert recomputed.status_code == 200, recomputed.text
    assert recomputed.json()["entered"] == 1
    assert await members(svc, merchant, "of-buyers") == {"c1"}


async def test_counts_and_amounts_beyond_a_bigint_are_refused_with_a_pointer(svc: ServiceHarness) -> None:
    for field in ("min_count", "max_count", "min_amount", "max_amount"):
        rule = {"kind": "purchased", field: 2**63}
        response = await svc.client.post(
            "/v1/segments/preview", json={"rule": rule}, headers=svc.auth("m-bounds")
        )
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["pointer"] for e in response.json()["errors"]] == [f"/rule/{field}"]


async def test_metrics_that_would_start_before_year_one_are_refused(svc: ServiceHarness) -> None:
    response = await svc.client.get(
        "/v1/groups/g1/metrics", params={"to": "0001-01-10"}, headers=svc.auth("m-metrics")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/to"


def _order(customer: str, category: str = "formula", **extra: object) -> dict[str, object]:
    line = {"line_id": "l1", "product_id": "p1", "category": category, "quantity": 1, "amount_minor": 500}
    return {
        "order_id": f"o-{uuid4()}", "customer_id": customer, "paid_at": datetime.now(UTC).isoformat(),
        "lines": [line], **extra,
    }  # fmt: skip


async def test_ingest_refuses_what_the_facts_tables_cannot_hold(svc: ServiceHarness) -> None:
    headers = svc.auth("m-lengths", role="operator")
    await svc.publish_outbox()  # earlier tests' events: out of the way, so this test counts only its own
    long_city = await svc.client.post(
        "/v1/ingest/customer_profile_updated",
        json={"events": [{"customer_id": "c1", "city": "x" * 65}]},
        headers=headers,
    )
    assert long_city.status_code == 422
    assert [e["pointer"] for e in long_city.json()["errors"]] == ["/events/0/city"]
    long_category = await svc.client.post(
        "/v1/ingest/order_paid", json={"events": [_order("c1", "x" * 129)]}, headers=headers
    )
    assert [e["pointer"] for e in long_category.json()["errors"]] == ["/events/0/lines/0/category"]
    other_subject = await svc.client.post(
        "/v1/ingest/order_paid", json={"events": [{"subject": "c2", "data": _order("c1")}]}, headers=headers
    )
    assert [e["pointer"] for e in other_subject.json()["errors"]] == ["/events/0/subject"]
    assert await svc.publish_outbox() == 0


async def test_a_category_as_long_as_its_column_makes_a_preference_tag(
    svc: ServiceHarness, settings: Settings
) -> None:
    """`tag:preference:` and a 128-character category is a 143-character segment key."""
    merchant, category = f"m-tag-{uuid4()}", "c" * 128
    headers = svc.auth(merchant, role="operator")
    response = await svc.client.post(
        "/v1/ingest/order_paid", json={"events": [_order("c1", category)]}, headers=headers
    )
    assert response.status_code == 202, response.text
    await svc.publish_outbox()
    await svc.consume()
    assert await members(svc, merchant, f"tag:preference:{category}") == {"c1"}


async def test_an_event_id_another_merchant_used_is_refused_with_a_pointer(svc: ServiceHarness) -> None:
    event_id = str(uuid4())
    await svc.publish_outbox()  # earlier tests' events: out of the way, so this test counts only its own
    first = await svc.client.post(
        "/v1/ingest/order_paid",
        json={"events": [{"id": event_id, "data": _order("c1")}]},
        headers=svc.auth("m-ids-a", role="operator"),
    )
    assert first.status_code == 202, first.text
    second = await svc.client.post(
        "/v1/ingest/order_paid",
        json={"events": [{"data": _order("c1")}, {"id": event_id, "data": _order("c1")}]},
        headers=svc.auth("m-ids-b", role="operator"),
    )
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in second.json()["errors"]] == ["/events/1/id"]
    assert await svc.publish_outbox() == 1, "only the first merchant's event"


async def test_rfm_scores_are_equal_for_equal_figures_and_five_for_the_best(svc: ServiceHarness) -> None:
    merchant = f"m-rfm-{uuid4()}"
    at = datetime(2026, 11, 1, tzinfo=UTC)
    # a and b (ids on either side of c's) have one equal order each; c has two bigger, later ones
    orders = [
        ("o1", "a", 100, at),
        ("o2", "b", 100, at),
        ("o3", "c", 900, at),
        ("o4", "c", 900, at.replace(day=2)),
    ]
    async with svc.uow() as uow:
        for customer in "abc":
            await uow.session.execute(
                text("INSERT INTO customers (merchant_id, customer_id) VALUES (:m, :c)"),
                {"m": merchant, "c": customer},
            )
        for order_id, customer, total, paid_at in orders:
            await uow.session.execute(
                text("INSERT INTO orders VALUES (:m, :o, :c, :at, :t, NULL)"),
                {"m": merchant, "o": order_id, "c": customer, "at": paid_at, "t": total},
            )
        await refresh_rfm(uow, merchant)
        scores = (
            await uow.session.execute(
                text("SELECT customer_id, r_score, f_score, m_score FROM customers WHERE merchant_id = :m"),
                {"m": merchant},
            )
        ).all()
    assert sorted(tuple(row) for row in scores) == [("a", 1, 1, 1), ("b", 1, 1, 1), ("c", 5, 5, 5)]
