"""What segments knows about one customer, as plain values: the input of every evaluation."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

Lifecycle = Literal["prospect", "new", "repurchase", "non_repurchase", "problem"]
ProfileField = Literal["gender", "age_band", "city", "size", "channel"]

# Upper bounds (exclusive) of each age band; the last band is open-ended.
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (18, "<18"),
    (25, "18-24"),
    (35, "25-34"),
    (45, "35-44"),
    (55, "45-54"),
)
OLDEST_AGE_BAND = "55+"


def age_band(birth_year: int | None, as_of_year: int) -> str | None:
    if birth_year is None:
        return None
    age = as_of_year - birth_year
    for upper, band in AGE_BANDS:
        if age < upper:
            return band
    return OLDEST_AGE_BAND


@dataclass(frozen=True)
class PurchasedLine:
    order_id: str
    product_id: str
    category: str
    amount_minor: int
    paid_at: datetime


@dataclass(frozen=True)
class RefundedLine:
    refund_id: str
    order_id: str
    product_id: str | None
    category: str | None
    amount_minor: int
    refunded_at: datetime
    is_complaint: bool = False


@dataclass(frozen=True)
class Favorite:
    product_id: str
    category: str
    favorited_at: datetime


@dataclass(frozen=True)
class CustomerFacts:
    customer_id: str
    gender: str | None = None
    birth_year: int | None = None
    city: str | None = None
    size: str | None = None
    channel: str | None = None
    tier_rank: int = 0
    lifecycle: Lifecycle = "prospect"
    r_score: int | None = None
    f_score: int | None = None
    m_score: int | None = None
    lines: tuple[PurchasedLine, ...] = ()
    refunds: tuple[RefundedLine, ...] = ()
    favorites: tuple[Favorite, ...] = ()
    active_group_ids: frozenset[str] = frozenset()
    last_group_activity_at: datetime | None = None
    referrals_made: int = 0
    referred_buyers: int = 0
    # Keys of the segments the customer is in; evaluation passes a live set it updates as it goes.
    segments: AbstractSet[str] = field(default_factory=frozenset)

    def profile_value(self, name: ProfileField, as_of_year: int) -> str | None:
        if name == "age_band":
            return age_band(self.birth_year, as_of_year)
        value: str | None = getattr(self, name)
        return value

    @property
    def order_ids(self) -> frozenset[str]:
        return frozenset(line.order_id for line in self.lines)

    def with_segments(self, segments: AbstractSet[str]) -> CustomerFacts:
        return replace(self, segments=segments)

    def with_lifecycle(self, stage: Lifecycle) -> CustomerFacts:
        return replace(self, lifecycle=stage)
