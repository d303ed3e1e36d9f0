"""The facts cache on its own: what it hands back, what it keeps, what it drops."""

from __future__ import annotations

from datetime import UTC, datetime

from segments.domain.facts import PurchasedLine
from segments.facts.cache import Entry, FactsCache, History, weight

AT = datetime(2026, 3, 1, tzinfo=UTC)


def history(lines: int = 0) -> History:
    bought = tuple(PurchasedLine(f"o{n}", "p", "toys", 100, AT) for n in range(lines))
    return History(bought, (), (), frozenset(), None, 0, 0, frozenset({"lifecycle:new"}))


def test_only_the_version_and_generation_kept_are_current() -> None:
    cache = FactsCache()
    kept = history(1)
    cache.store({("m", "c"): Entry(7, 3, kept)})
    assert cache.get(("m", "c"), 7, 3) is kept
    assert cache.get(("m", "c"), 8, 3) is None
    assert cache.get(("m", "c"), 7, None) is None
    assert cache.get(("other", "c"), 7, 3) is None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = FactsCache()
    newer, older = history(2), history(1)
    cache.store({("m", "c"): Entry(9, None, newer)})
    cache.store({("m", "c"): Entry(8, None, older)})
    assert cache.get(("m", "c"), 9, None) is newer
    assert cache.get(("m", "c"), 8, None) is None


def test_past_capacity_the_least_recently_stored_go_first() -> None:
    one = Entry(1, None, history(5))
    cache = FactsCache(capacity=3 * weight(one))
    for customer in ("a", "b", "c"):
        cache.store({("m", customer): one})
    cache.store({("m", "a"): Entry(2, None, history(5))})  # a is now the most recent
    cache.store({("m", "d"): one})
    assert len(cache) == 3
    assert cache.get(("m", "b"), 1, None) is None
    assert cache.get(("m", "a"), 2, None) is not None
    assert cache.get(("m", "d"), 1, None) is not None
    assert cache.weight == 3 * weight(one)
