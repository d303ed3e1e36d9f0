"""The daily job: refresh RFM quintiles, then re-evaluate every customer so time-based transitions
(new → non_repurchase, time windows leaving a customer, fans going quiet) happen even without events.

It runs in batches of customers, one transaction each, and is idempotent: a second run the same day
finds nothing to change and emits nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text

from meadow_runtime.errors import transient_failure
from meadow_runtime.settings import Settings
from meadow_runtime.uow import UnitOfWork

from .facts.service import compiled_for, reevaluate_customers
from .uow import SegmentsUnitOfWork

log = logging.getLogger(__name__)
BATCH = 1000
# A merchant's run undone by a concurrent transaction (deadlock, lock timeout) is tried again, as the
# run is idempotent: a day without its transitions is worse than a few seconds' wait.
TRANSIENT_RETRIES = 4

# Quintile 5 is the best: most recent, most frequent, biggest spender. By percent rank, so customers with
# equal figures share a score (ntile split ties by customer id); a sole buyer, or buyers all tied, score 1.
# The rows to change are locked first, in customer order, as consumer batches lock theirs: the update
# alone would lock them in the order of its plan (by spend, say), and a batch holding one customer while
# waiting for another could then deadlock with it.
REFRESH_RFM = text(
    """
    WITH stats AS (
        SELECT customer_id, max(paid_at) AS last_paid, count(*) AS orders, sum(total_minor) AS spent
        FROM orders WHERE merchant_id = :merchant GROUP BY customer_id
    ), scored AS (
        SELECT customer_id,
               least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY last_paid)))::int AS r,
               least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY orders)))::int AS f,
               least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY spent)))::int AS m
        FROM stats
    ), locked AS MATERIALIZED (
        SELECT c.customer_id FROM customers c JOIN scored s ON s.customer_id = c.customer_id
        WHERE c.merchant_id = :merchant
          AND (c.r_score, c.f_score, c.m_score) IS DISTINCT FROM (s.r, s.f, s.m)
        ORDER BY c.customer_id
        FOR UPDATE OF c
    )
    UPDATE customers c SET r_score = s.r, f_score = s.f, m_score = s.m
    FROM scored s JOIN locked l ON l.customer_id = s.customer_id
    WHERE c.merchant_id = :merchant AND c.customer_id = s.customer_id
    """
)


async def refresh_rfm(uow: SegmentsUnitOfWork, merchant: str) -> None:
    await uow.session.execute(REFRESH_RFM, {"merchant": merchant})


async def reevaluate_merchant(
    uow_factory: Callable[[], UnitOfWork], merchant: str, now: datetime | None = None
) -> int:
    """Refresh RFM and re-evaluate every customer of one merchant; returns how many memberships changed."""
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        assert isinstance(uow, SegmentsUnitOfWork)
        await refresh_rfm(uow, merchant)
        await uow.commit()
    changed, after = 0, ""
    while True:
        async with uow_factory() as uow:
            assert isinstance(uow, SegmentsUnitOfWork)
            result = await uow.session.execute(
                text(
                    "SELECT customer_id FROM customers WHERE merchant_id = :m AND customer_id > :after "
                    "ORDER BY customer_id LIMIT :n"
                ),
                {"m": merchant, "after": after, "n": BATCH},
            )
            customers = [row[0] for row in result]
            if not customers:
                return changed
            stored = await uow.definitions.all_of(merchant, share_lock=True)
            outcomes = await reevaluate_customers(
                uow,
                merchant,
                dict.fromkeys(customers),
                now,
                compiled_for(stored, now),
                {s.key: s.id for s in stored},
            )
            await uow.commit()
        changed += sum(len(o.entered) + len(o.exited) for o in outcomes)
        after = customers[-1]


class DailyReevaluationFailed(Exception):
    def __init__(self, merchants: list[str]) -> None:
        super().__init__(f"daily re-evaluation failed for {len(merchants)} merchant(s): {merchants[:20]}")
        self.merchants = merchants


async def daily_reevaluation(uow_factory: Callable[[], UnitOfWork], settings: Settings) -> None:
    del settings
    async with uow_factory() as uow:
        merchants = [
            row[0] for row in await uow.session.execute(text("SELECT DISTINCT merchant_id FROM customers"))
        ]
    failed = []
    for merchant in merchants:
        try:
            changed = await _reevaluate_retrying(uow_factory, merchant)
        except Exception:  # one merchant's failure (a bad definition, say) must not hold up the others
            log.exception("daily re-evaluation failed", extra={"merchant": merchant})
            failed.append(merchant)
            continue
        log.info("daily re-evaluation done", extra={"merchant": merchant, "changes": changed})
    if failed:
        raise DailyReevaluationFailed(failed)


async def _reevaluate_retrying(uow_factory: Callable[[], UnitOfWork], merchant: str) -> int:
    for attempt in range(TRANSIENT_RETRIES):
        try:
            return await reevaluate_merchant(uow_factory, merchant)
        except Exception as error:
            if not transient_failure(error):
                raise
            log.warning("daily re-evaluation undone; trying again", extra={"merchant": merchant})
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))  # backoff, not synchronisation
    return await reevaluate_merchant(uow_factory, merchant)
