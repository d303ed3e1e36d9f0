"""Customers' facts as this process last committed them, reused while the customer row says they are current.

Every event about a known customer used to read all of the customer's order lines, refunds, favorites,
groups and memberships again: most of a batch's database time and a third of the worker's. Now the
facts a transaction ends with are kept, tagged with the `facts_version` of the customer row and the
merchant's memberships generation they were read at, and the next transaction takes them instead of
reading them while both are still what the row says (read under the row lock, so no writer can change
them meanwhile). The rule that makes this safe, kept by `FactsRepository`: a transaction that changes a
customer's history gives the row a new version before it commits; one that rewrites memberships outside
an evaluation gives the merchant a new generation. The profile, tier, lifecycle stage and RFM scores sit
on the row itself and are read with it every time; they are not kept here.

Entries are replaced only by newer versions (the sequence only grows), and only after the commit: a
transaction rolled back leaves nothing behind. The cache is bounded by what its entries hold, not by how
many: past `capacity` units, the least recently stored entries go first (`weight`).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import NamedTuple
from weakref import WeakKeyDictionary

from prometheus_client import Counter, Gauge

from ..domain.facts import Favorite, PurchasedLine, RefundedLine

CustomerKey = tuple[str, str]  # (merchant, customer)

# Per customer loaded for re-evaluation: from kept facts ("kept") or read in full ("read").
FACTS_LOADED = Counter(
    "meadow_segments_facts_loaded_total", "Customers' facts loaded for re-evaluation, by source", ["source"]
)
CACHE_WEIGHT = Gauge("meadow_segments_facts_cache_units", "What the facts cache holds, in units of ~70 bytes")


class History(NamedTuple):
    """A customer's facts that do not sit on the customer row, named as `CustomerFacts` names them."""

    lines: tuple[PurchasedLine, ...]
    refunds: tuple[RefundedLine, ...]
    favorites: tuple[Favorite, ...]
    active_group_ids: frozenset[str]
    last_group_activity_at: datetime | None
    referrals_made: int
    referred_buyers: int
    segments: AbstractSet[str]


class Entry(NamedTuple):
    version: int
    generation: int | None
    history: History


# Units of `weight`, ~70 bytes each as measured with tracemalloc (5.2 KB for a customer with 10 order
# lines and 30 memberships, 70 units): ~220 MB, the facts of ~40,000 such customers.
DEFAULT_CAPACITY = 3_000_000


def weight(entry: Entry) -> int:
    """What an entry holds, in units of ~70 bytes: an order line or a refund takes ~3, a membership ~1
    (its key is shared), the entry itself ~10."""
    history = entry.history
    return (
        10 + 3 * (len(history.lines) + len(history.refunds) + len(history.favorites)) + len(history.segments)
    )


class FactsCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.weight = 0
        self._entries: dict[CustomerKey, Entry] = {}

    def get(self, key: CustomerKey, version: int, generation: int | None) -> History | None:
        entry = self._entries.get(key)
        if entry is None or entry.version != version or entry.generation != generation:
            return None
        return entry.history

    def store(self, entries: Mapping[CustomerKey, Entry]) -> None:
        for key, entry in entries.items():
            held = self._entries.pop(key, None)
            if held is not None:
                self.weight -= weight(held)
                if held.version > entry.version:
                    entry = held  # a later transaction of this process got there first
            self._entries[key] = entry  # last in the order: most recently used
            self.weight += weight(entry)
        while self.weight > self.capacity and self._entries:
            self.weight -= weight(self._entries.pop(next(iter(self._entries))))
        CACHE_WEIGHT.set(self.weight)

    def __len__(self) -> int:
        return len(self._entries)


_BY_DATABASE: WeakKeyDictionary[object, FactsCache] = WeakKeyDictionary()


def cache_for(database: object) -> FactsCache:
    """The cache of one database, keyed by its session factory: versions are only comparable within one
    database, and a process (a test run) may talk to several."""
    cache = _BY_DATABASE.get(database)
    if cache is None:
        cache = _BY_DATABASE[database] = FactsCache()
    return cache
