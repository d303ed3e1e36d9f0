"""What segments knows about one customer, as plain values: the input of every evaluation."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, Generic, Literal, NamedTuple, TypeVar, overload

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


# The facts a customer has many of are named tuples: a batch loads thousands of them, and a tuple is
# built in a fraction of a frozen dataclass's time (which sets every field through object.__setattr__).


class PurchasedLine(NamedTuple):
    order_id: str
    product_id: str
    category: str
    amount_minor: int
    paid_at: datetime


class RefundedLine(NamedTuple):
    refund_id: str
    order_id: str
    product_id: str | None
    category: str | None
    amount_minor: int
    refunded_at: datetime
    is_complaint: bool = False


class Favorite(NamedTuple):
    product_id: str
    category: str
    favorited_at: datetime


T = TypeVar("T")


class computed_once(Generic[T]):  # named as the decorator it replaces
    """`functools.cached_property` without its lock: Python 3.11 takes an RLock on every first access
    (~1 µs), and evaluation reads these views once per customer per batch, in one thread. As with
    `cached_property`, the value lands in the instance's `__dict__`, which later reads find first."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> computed_once[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> T | computed_once[T]:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._compute(instance)
        return value


# Field getters in C, for the scans every evaluation makes of a customer's lines.
_ORDER_ID: Callable[[PurchasedLine], str] = attrgetter("order_id")
LINE_AMOUNT: Callable[[PurchasedLine | RefundedLine], int] = attrgetter("amount_minor")

# (what is counted, product, category, amount in minor units, when)
ActivityItem = tuple[str, str | None, str | None, int, datetime]


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

    @classmethod
    def from_fields(cls, fields: dict[str, object]) -> CustomerFacts:
        """Facts from a value for every field, without `__init__`, which sets each of the 19 through
        `object.__setattr__` (~4 µs; a batch loads a thousand customers)."""
        facts = object.__new__(cls)
        facts.__dict__.update(fields)
        return facts

    def profile_value(self, name: ProfileField, as_of_year: int) -> str | None:
        if name == "age_band":
            return age_band(self.birth_year, as_of_year)
        value: str | None = getattr(self, name)
        return value

    @property
    def order_count(self) -> int:
        """Distinct orders (a customer's lines are few: a set of their ids costs less than keeping it)."""
        return len(set(map(_ORDER_ID, self.lines)))

    # The facts as flat tuples (what is counted, product, category, amount, when): every `purchased` /
    # `refunded` / `favorited` node scans them. A purchased line already is that tuple; refunds and
    # favorites are rebuilt once per customer.
    @property
    def purchase_items(self) -> tuple[ActivityItem, ...]:
        return self.lines

    @computed_once
    def refund_items(self) -> tuple[ActivityItem, ...]:
        return tuple(
            (x.refund_id, x.product_id, x.category, x.amount_minor, x.refunded_at) for x in self.refunds
        )

    @computed_once
    def favorite_items(self) -> tuple[ActivityItem, ...]:
        return tuple((x.product_id, x.product_id, x.category, 0, x.favorited_at) for x in self.favorites)

    # (count, total amount) of the activity matching one filter, keyed by the filter: segments whose rules
    # filter the same activity the same way (thresholds apart) share one scan of it per customer.
    @computed_once
    def activity_totals(self) -> dict[Hashable, tuple[int, int]]:
        return {}

    def evaluated(self, stage: Lifecycle, segments: AbstractSet[str]) -> CustomerFacts:
        """A copy at another stage and memberships. Not `dataclasses.replace`, which re-runs `__init__`
        over every field: evaluation makes a copy per customer per batch. The computed views above are
        carried over, as they derive only from lines, refunds and favorites, which no copy changes."""
        copy = object.__new__(CustomerFacts)
        fields = copy.__dict__
        fields.update(self.__dict__)
        fields["lifecycle"] = stage
        fields["segments"] = segments
        return copy
