"""Facts a worker keeps between batches (facts/cache.py): reused while current, never once stale.

The order handler is called directly, each call one committed batch, so which worker (which cache) handles
which event is up to the test. A second worker is a second session factory on the same database: a cache
of its own, as another process would have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from prometheus_client import REGISTRY
from segments_test_events import order_deliveries, order_paid
from sqlalchemy import event, text

from meadow_contracts import Envelope, SegmentEntered
from meadow_runtime.db import create_session_factory
from meadow_runtime.testing.harness import ServiceHarness
from segments.app import SERVICE
from segments.consumers import on_order_paid
from segments.uow import SegmentsUnitOfWork

Worker = Callable[[], Any]


async def handle(worker: Worker, *envelopes: Envelope, commit: bool = True) -> None:
    async with worker() as uow:
        assert isinstance(uow, SegmentsUnitOfWork)
        await on_order_paid(uow, order_deliveries(envelopes))
        if commit:
            await uow.commit()


def another_worker(svc: ServiceHarness) -> Worker:
    sessions = create_session_factory(svc.engine)
    return lambda: SERVICE.unit_of_work(sessions, SERVICE.name)


@contextmanager
def facts_reads(svc: ServiceHarness) -> Iterator[list[str]]:
    """The statements reading customers' facts in full, as they run."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "AS segment_keys" in statement:
            seen.append(statement)

    event.listen(svc.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(svc.engine.sync_engine, "before_cursor_execute", record)


def loaded(source: str) -> float:
    return REGISTRY.get_sample_value("meadow_segments_facts_loaded_total", {"source": source}) or 0.0


async def save(svc: ServiceHarness, merchant: str, key: str, rule: dict[str, Any]) -> None:
    response = await svc.client.post(
        "/v1/segments", json={"key": key, "name": key, "rule": rule}, headers=svc.auth(merchant)
    )
    assert response.status_code == 201, response.text


async def entered(svc: ServiceHarness, merchant: str, customer: str, key: str) -> int:
    """How many segment.entered events went out for the customer and segment."""
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT count(*) FROM outbox WHERE aggregateid = :a AND type = :t "
                "AND payload->'data'->>'segment_key' = :k"
            ),
            {"a": f"{merchant}:{customer}", "t": SegmentEntered.event_type, "k": key},
        )
        return int(rows.scalar_one())


async def test_a_known_customers_facts_are_kept_not_read_again(svc: ServiceHarness) -> None:
    merchant, customer = "m-kept", f"c-{uuid4()}"
    await save(svc, merchant, "toys-twice", {"kind": "purchased", "category": "toys", "min_count": 2})
    await handle(svc.uow, order_paid(merchant, customer, ("p1", "toys", 1_000)))
    kept_before = loaded("kept")
    with facts_reads(svc) as reads:
        await handle(svc.uow, order_paid(merchant, customer, ("p2", "toys", 1_000)))
    assert reads == []
    assert loaded("kept") == kept_before + 1  # and /metrics says so
    assert await entered(svc, merchant, customer, "toys-twice") == 1
    assert await entered(svc, merchant, customer, "lifecycle:repurchase") == 1
    # the kept memberships are those the last batch left: kept ones without its entries would enter
    # the customer again (and fail the batch), kept ones without its exits would not exit them
    with facts_reads(svc) as reads:
        await handle(svc.uow, order_paid(merchant, customer, ("p3", "toys", 1_000)))
    assert reads == []
    assert await entered(svc, merchant, customer, "toys-twice") == 1


async def test_facts_another_worker_changed_are_read_again(svc: ServiceHarness) -> None:
    merchant, customer = "m-kept-elsewhere", f"c-{uuid4()}"
    await save(svc, merchant, "toys-thrice", {"kind": "purchased", "category": "toys", "min_count": 3})
    other = another_worker(svc)
    await handle(svc.uow, order_paid(merchant, customer, ("p1", "toys", 1_000)))
    await handle(other, order_paid(merchant, customer, ("p2", "toys", 1_000)))
    # this worker's facts of the customer know one order; the row says they changed since
    with facts_reads(svc) as reads:
        await handle(svc.uow, order_paid(merchant, customer, ("p3", "toys", 1_000)))
    assert len(reads) == 1
    assert await entered(svc, merchant, customer, "toys-thrice") == 1
    # and the other worker, in turn, does not take its own facts for current
    await handle(other, order_paid(merchant, customer, ("p4", "toys", 1_000)))
    assert await entered(svc, merchant, customer, "lifecycle:repurchase") == 1


async def test_memberships_a_save_rewrote_are_read_again(svc: ServiceHarness) -> None:
    merchant, customer = "m-kept-saved", f"c-{uuid4()}"
    await handle(svc.uow, order_paid(merchant, customer, ("p1", "toys", 9_000)))
    # the recompute enters the customer: memberships written outside any evaluation
    await save(svc, merchant, "big-toys", {"kind": "purchased", "category": "toys", "min_amount": 5_000})
    assert await entered(svc, merchant, customer, "big-toys") == 1
    # kept facts without that membership would enter the customer a second time (and fail the batch)
    await handle(svc.uow, order_paid(merchant, customer, ("p2", "toys", 1_000)))
    assert await entered(svc, merchant, customer, "big-toys") == 1


async def test_a_batch_rolled_back_leaves_nothing_kept(svc: ServiceHarness) -> None:
    merchant, customer = "m-kept-undone", f"c-{uuid4()}"
    await save(svc, merchant, "spent-15k", {"kind": "purchased", "min_amount": 15_000})
    await handle(svc.uow, order_paid(merchant, customer, ("p1", "toys", 5_000)))
    second = order_paid(merchant, customer, ("p2", "toys", 5_000))
    await handle(svc.uow, second, commit=False)
    await handle(svc.uow, second)  # the same batch again, as the runner retries it
    # 10,000 spent: a cache holding the undone batch's line too would count 15,000
    assert await entered(svc, merchant, customer, "spent-15k") == 0
    await handle(svc.uow, order_paid(merchant, customer, ("p3", "toys", 5_000)))
    assert await entered(svc, merchant, customer, "spent-15k") == 1


async def first_seen(svc: ServiceHarness, merchant: str, customer: str) -> datetime | None:
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT first_seen_at FROM customers WHERE merchant_id = :m AND customer_id = :c"),
            {"m": merchant, "c": customer},
        )
        return rows.scalar_one_or_none()


async def test_order_times_are_stored_to_the_microsecond_whatever_their_offset(svc: ServiceHarness) -> None:
    merchant, customer = "m-kept-times", f"c-{uuid4()}"
    shanghai = timezone(timedelta(hours=8))
    times = [
        datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=shanghai),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),  # before the epoch
        # past 2^53 µs either side of the epoch, where a float of microseconds is no longer exact
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ]
    for at in times:
        await handle(svc.uow, order_paid(merchant, customer, at=at))
    async with svc.uow() as uow:
        stored = await uow.session.execute(
            text(
                "SELECT o.paid_at, l.paid_at FROM orders o JOIN order_lines l USING (merchant_id, order_id) "
                "WHERE o.merchant_id = :m ORDER BY o.paid_at"
            ),
            {"m": merchant},
        )
        assert [tuple(row) for row in stored] == [(at, at) for at in sorted(times)]
    assert await first_seen(svc, merchant, customer) == min(times)
