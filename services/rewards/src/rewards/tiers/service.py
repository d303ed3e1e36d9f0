"""Tier (VIP level) evaluation: rolling 12-month net earned points against the merchant's levels."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text

from meadow_contracts.events import TierChanged

from ..domain.earning import TierLevel, tier_for
from ..ledger.repository import BalanceRow, CustomerKey

if TYPE_CHECKING:
    from ..uow import RewardsUnitOfWork

ROLLING_WINDOW = "365 days"

ROLLING_POINTS = text(
    f"""
    SELECT t.merchant_id, t.customer_id,
           sum(CASE WHEN t.kind = 'earn' THEN t.points ELSE -t.points END) AS points
    FROM transfers t
    JOIN unnest(CAST(:m AS text[]), CAST(:c AS text[])) AS k(m, c)
      ON t.merchant_id = k.m AND t.customer_id = k.c
    WHERE t.kind IN ('earn', 'reverse')
      -- a reversal counts when the points it takes back were earned: out of the window with its earning
      AND coalesce(t.earned_at, t.occurred_at) > now() - interval '{ROLLING_WINDOW}'
    GROUP BY t.merchant_id, t.customer_id
    """
)


async def tier_levels(uow: RewardsUnitOfWork, merchant_ids: Iterable[str]) -> dict[str, list[TierLevel]]:
    rows = await uow.session.execute(
        text(
            "SELECT merchant_id, name, rank, threshold_points, multiplier FROM tiers "
            "WHERE merchant_id = ANY(CAST(:m AS text[]))"
        ),
        {"m": list(set(merchant_ids))},
    )
    levels: dict[str, list[TierLevel]] = {}
    for r in rows:
        levels.setdefault(r.merchant_id, []).append(
            TierLevel(r.name, r.rank, r.threshold_points, r.multiplier)
        )
    return levels


async def rolling_points(uow: RewardsUnitOfWork, keys: list[CustomerKey]) -> dict[CustomerKey, int]:
    if not keys:
        return {}
    rows = await uow.session.execute(ROLLING_POINTS, {"m": [k[0] for k in keys], "c": [k[1] for k in keys]})
    return {(r.merchant_id, r.customer_id): int(r.points) for r in rows}


async def reevaluate(uow: RewardsUnitOfWork, rows: Iterable[BalanceRow]) -> list[BalanceRow]:
    """Move locked customers to the tier their rolling points reach; emits `tier.changed` up or down.
    Returns the rows that changed (the caller saves them)."""
    candidates = list(rows)
    levels = await tier_levels(uow, {r.merchant_id for r in candidates})
    candidates = [r for r in candidates if levels.get(r.merchant_id) or r.tier_rank > 0]
    points = await rolling_points(uow, [(r.merchant_id, r.customer_id) for r in candidates])
    changed: list[BalanceRow] = []
    now = datetime.now(UTC)
    for row in candidates:
        level = tier_for(levels.get(row.merchant_id, []), points.get((row.merchant_id, row.customer_id), 0))
        rank, name = (level.rank, level.name) if level else (0, None)
        if rank == row.tier_rank and name == row.tier_name:
            continue
        announce_tier_change(
            uow, row.merchant_id, row.customer_id, (row.tier_name, row.tier_rank), (name, rank), now
        )
        row.tier_rank, row.tier_name = rank, name
        changed.append(row)
    return changed


def announce_tier_change(
    uow: RewardsUnitOfWork,
    merchant_id: str,
    customer_id: str,
    old: tuple[str | None, int],
    new: tuple[str | None, int],
    at: datetime,
) -> None:
    """`tier.changed` from the (name, rank) held before to the one reached."""
    uow.outbox.add(
        TierChanged(
            customer_id=customer_id, old_tier=old[0], new_tier=new[0], new_rank=new[1],
            direction="up" if new[1] > old[1] else "down", changed_at=at,
        ),
        merchant_id=merchant_id,
        subject=customer_id,
    )  # fmt: skip
