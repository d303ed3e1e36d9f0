"""Points rules kept in Python: refund shares and tiers. (Purchase lines are priced in SQL on the ingest
path, migration 0005: every matching rule's rate per whole unit × the tier multiplier, rounded down.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


def reversal_points(earned: int, paid_minor: int, refunded_total_minor: int, already_reversed: int) -> int:
    """Points to take back when a line's refunds reach `refunded_total_minor` (this refund included):
    pro rata to the refunded share, computed on the running total so that partial refunds adding up to
    the whole line take back exactly what it earned."""
    if paid_minor <= 0 or earned <= 0:
        return 0
    target = earned if refunded_total_minor >= paid_minor else earned * refunded_total_minor // paid_minor
    return max(0, target - already_reversed)


@dataclass(frozen=True)
class TierLevel:
    name: str
    rank: int
    threshold_points: int
    multiplier: Decimal


def tier_for(levels: Sequence[TierLevel], rolling_points: int) -> TierLevel | None:
    """The highest tier whose threshold the rolling 12-month points reach; None below the first."""
    reached = [level for level in levels if rolling_points >= level.threshold_points]
    return max(reached, key=lambda level: level.rank) if reached else None
