"""One consumer batch holding several customers, several events of one customer and two merchants.

The handler is called directly with the batch's deliveries, so the events are certainly in one batch:
what a batch records is the difference between each customer's memberships before it and after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from segments_test_events import order_deliveries, order_paid
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from meadow_contracts import Envelope, model_for
from meadow_runtime.testing.harness import ServiceHarness
from segments.consumers import on_order_paid
from segments.domain.evaluation import Outcome
from segments.facts.service import builtin_segment_id, record_outcomes


async def handle(svc: ServiceHarness, envelopes: Sequence[Envelope]) -> list[tuple[str, Any]]:
    """Run the order handler over one batch and commit; returns the outbox rows it wrote."""
    async with svc.uow() as uow:
        before = set((await uow.session.execute(text("SELECT id FROM outbox"))).scalars())
        await on_order_paid(uow, order_deliveries(envelopes))
        await uow.commit()
    async with svc.uow() as uow:
        rows = await uow.session.execute(text("SELECT id, aggregateid, type, payload, headers FROM outbox"))
        return [(row.aggregateid, row) for row in rows if row.id not in before]


async def memberships(svc: ServiceHarness, merchant: str) -> set[tuple[str, str]]:
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT segment_key, customer_id FROM segment_memberships WHERE merchant_id = :m"),
            {"m": merchant},
        )
        return {(row.segment_key, row.customer_id) for row in rows}


async def test_one_batch_records_each_customers_final_state_once(svc: ServiceHarness) -> None:
    merchant, other = "m-batch", "m-batch-other"
    headers = svc.auth(merchant)
    rule = {"kind": "purchased", "category": "toys", "min_count": 2}
    created = await svc.client.post(
        "/v1/segments", json={"key": "toy-lovers", "name": "Toy lovers", "rule": rule}, headers=headers
    )
    assert created.status_code == 201, created.text
    toy_lovers = UUID(created.json()["id"])
    twice, once = f"twice-{uuid4()}", f"once-{uuid4()}"
    earlier = datetime.now(UTC) - timedelta(days=1)
    batch = [
        order_paid(merchant, twice, ("p1", "toys", 5_000), at=earlier),
        order_paid(merchant, once, ("p2", "formula", 5_000)),
        order_paid(other, twice, ("p1", "toys", 5_000)),
        order_paid(merchant, twice, ("p3", "toys", 7_000)),
    ]
    written = await handle(svc, batch)

    events: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key, row in written:
        envelope = Envelope.model_validate(row.payload)
        event = model_for(envelope.type).model_validate(envelope.data)
        assert key == f"{envelope.merchant_id}:{envelope.subject}"
        assert envelope.subject == event.customer_id
        assert row.type == envelope.type
        assert row.id == envelope.id
        assert envelope.source == "segments"
        assert isinstance(row.headers, dict)
        if hasattr(event, "segment_key"):
            expected = (
                toy_lovers
                if event.segment_key == "toy-lovers"
                else builtin_segment_id(envelope.merchant_id, event.segment_key)
            )
            assert event.segment_id == expected
            kind = "entered" if envelope.type.endswith("segment_entered.v1") else "exited"
            change = (kind, event.segment_key)
        else:
            change = ("lifecycle", f"{event.old_stage}->{event.new_stage}")
        events.setdefault((envelope.merchant_id, event.customer_id), []).append(change)

    # Two orders of one customer in one batch: straight to repurchase, no `new` in between.
    assert sorted(events[(merchant, twice)]) == sorted(
        [
            ("entered", "lifecycle:repurchase"),
            ("entered", "tag:preference:toys"),
            ("entered", "tag:spending_power:low"),
            ("entered", "toy-lovers"),
            ("lifecycle", "prospect->repurchase"),
        ]
    )
    assert ("lifecycle", "prospect->new") in events[(merchant, once)]
    assert ("lifecycle", "prospect->new") in events[(other, twice)]
    assert ("entered", "toy-lovers") not in events[(other, twice)]
    # The memberships are exactly what the events announced, merchant by merchant.
    for m in (merchant, other):
        announced = {
            (key, customer)
            for (em, customer), changes in events.items()
            if em == m
            for kind, key in changes
            if kind == "entered"
        }
        assert await memberships(svc, m) == announced
    async with svc.uow() as uow:
        stages = dict(
            (
                await uow.session.execute(
                    text("SELECT merchant_id || ':' || customer_id, lifecycle FROM customers")
                )
            ).all()
        )
    assert stages[f"{merchant}:{twice}"] == "repurchase"
    assert stages[f"{other}:{twice}"] == "new"

    # The same batch again (a redelivery under new event ids) changes nothing and emits nothing.
    again = [Envelope(**{**e.model_dump(), "id": uuid4()}) for e in batch]
    assert await handle(svc, again) == []

    # A later batch moves a customer on: the exit and the entry are both recorded, as events and rows.
    later = await handle(svc, [order_paid(merchant, once, ("p4", "formula", 5_000))])
    moves = {(row.type, row.payload["data"].get("segment_key")) for _, row in later}
    assert {
        ("segments.segment_exited.v1", "lifecycle:new"),
        ("segments.segment_entered.v1", "lifecycle:repurchase"),
    } <= moves
    assert ("lifecycle:new", once) not in await memberships(svc, merchant)
    assert ("lifecycle:repurchase", once) in await memberships(svc, merchant)


async def test_an_entry_already_stored_fails_the_batch_instead_of_announcing_it(svc: ServiceHarness) -> None:
    """Entries are diffed against the memberships read under the customer's lock; one that is already
    stored means that view was stale. The batch must fail (the runner retries it on fresh reads), not
    skip the row and still emit its `segment.entered`."""
    merchant, customer = "m-stale", f"stale-{uuid4()}"
    now = datetime.now(UTC)
    async with svc.uow() as uow:
        await uow.facts.ensure_customers(merchant, [(customer, now)])
        await uow.facts.enter_segments(merchant, [("lifecycle:new", customer)], now)
        await uow.commit()
    stale = Outcome(customer, "prospect", "new", entered=frozenset({"lifecycle:new"}), exited=frozenset())
    async with svc.uow() as uow:
        with pytest.raises(IntegrityError):
            await record_outcomes(uow, merchant, [stale], now, {})
    async with svc.uow() as uow:
        announced = await uow.session.execute(
            text("SELECT count(*) FROM outbox WHERE aggregateid = :key"), {"key": f"{merchant}:{customer}"}
        )
        stage = await uow.session.execute(
            text("SELECT lifecycle FROM customers WHERE merchant_id = :m AND customer_id = :c"),
            {"m": merchant, "c": customer},
        )
    assert announced.scalar_one() == 0
    assert stage.scalar_one() == "prospect"
