"""Periodic work of the rewards worker: expiring lots, and re-evaluating tiers as the 12-month window slides.

Both run in small chunks, each its own transaction under the customers' balance locks, so they never hold
many locks for long and can run beside the consumers (and beside another worker's copy of the job).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from meadow_runtime.service import PeriodicJob
from meadow_runtime.settings import Settings

from .ledger.service import expire_due, open_wallet
from .tiers.service import reevaluate
from .uow import RewardsUnitOfWork

CHUNK = 200


async def expire_points(
    uow_factory: Callable[[], Any], settings: Settings, now: datetime | None = None
) -> int:
    """Expire every lot past its expiry; returns how many customers had points expire."""
    moment = now or datetime.now(UTC)
    customers = 0
    while True:
        uow: RewardsUnitOfWork
        async with uow_factory() as uow:
            due = (
                await uow.session.execute(
                    text(
                        "SELECT DISTINCT merchant_id, customer_id FROM lots "
                        "WHERE remaining > 0 AND expires_at <= :now "
                        "ORDER BY merchant_id, customer_id LIMIT :n"  # the consumers' lock order
                    ),
                    {"now": moment, "n": CHUNK},
                )
            ).all()
            for merchant_id, customer_id in due:
                locked = await open_wallet(uow, (merchant_id, customer_id))
                await expire_due(uow, locked, moment)
            await uow.commit()
        customers += len(due)
        if len(due) < CHUNK:
            return customers


async def reevaluate_tiers(uow_factory: Callable[[], Any], settings: Settings) -> int:
    """Move customers whose rolling points fell below (or rose above) their tier; returns how many moved."""
    moved, after = 0, ("", "")
    while True:
        uow: RewardsUnitOfWork
        async with uow_factory() as uow:
            keys = (
                await uow.session.execute(
                    text(
                        """
                        SELECT b.merchant_id, b.customer_id FROM balances b
                        WHERE (b.tier_rank > 0
                               OR EXISTS (SELECT 1 FROM tiers t WHERE t.merchant_id = b.merchant_id))
                          AND (b.merchant_id, b.customer_id) > (:m, :c)
                        ORDER BY b.merchant_id, b.customer_id LIMIT :n
                        """
                    ),
                    {"m": after[0], "c": after[1], "n": CHUNK},
                )
            ).all()
            if not keys:
                return moved
            locked = await uow.ledger.lock_balances((k[0], k[1]) for k in keys)
            changed = await reevaluate(uow, locked.values())
            await uow.ledger.save_balances(changed)
            await uow.commit()
        moved += len(changed)
        after = (keys[-1][0], keys[-1][1])


JOBS = (
    PeriodicJob("expire-points", every=timedelta(minutes=15), run=expire_points),
    PeriodicJob("reevaluate-tiers", every=timedelta(hours=6), run=reevaluate_tiers),
)
