"""How many points a cause earns: purchase lines by category rules and tier multiplier, and tiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

MINOR_UNITS_PER_UNIT = 100


@dataclass(frozen=True)
class PurchaseRule:
    points_per_unit: Decimal
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()

    def applies_to(self, category: str) -> bool:
        if category in self.exclude_categories:
            return False
        return not self.include_categories or category in self.include_categories


@dataclass(frozen=True)
class Line:
    line_id: str
    category: str
    amount_minor: int


def purchase_rate(rules: Sequence[PurchaseRule], category: str) -> Decimal:
    """Points per whole currency unit for a category: the sum of every matching rule's rate."""
    return sum((rule.points_per_unit for rule in rules if rule.applies_to(category)), Decimal(0))


def points_at_rate(amount_minor: int, rate: Decimal) -> int:
    """Points for an amount at a rate (tier multiplier included), rounded down (a fraction of a point is
    never issued)."""
    raw = Decimal(amount_minor) * rate / MINOR_UNITS_PER_UNIT
    return int(raw.to_integral_value(rounding=ROUND_FLOOR))


def line_points(rules: Sequence[PurchaseRule], line: Line, multiplier: Decimal) -> int:
    """Points for one paid line: every matching rule's rate per whole currency unit, times the tier
    multiplier, rounded down."""
    return points_at_rate(line.amount_minor, purchase_rate(rules, line.category) * multiplier)


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
