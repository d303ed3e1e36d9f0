from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from content.domain.lottery import Entrant, draw, new_seed, seed_commitment, verify

ENTRANTS = [Entrant(f"c{i}") for i in range(50)]


def test_draw_is_deterministic_and_distinct() -> None:
    seed = "a" * 64
    first = draw(seed, ENTRANTS, 5)
    assert first == draw(seed, list(reversed(ENTRANTS)), 5)
    assert len(set(first)) == 5
    assert first != draw("b" * 64, ENTRANTS, 5)


def test_fewer_entrants_than_winners() -> None:
    assert sorted(draw("s", ENTRANTS[:3], 10)) == ["c0", "c1", "c2"]
    assert draw("s", [], 3) == ()


def test_revealed_seed_verifies_and_tampered_seed_fails() -> None:
    seed = new_seed()
    winners = draw(seed, ENTRANTS, 3)
    ok, _ = verify(seed, seed_commitment(seed), ENTRANTS, 3, winners)
    assert ok
    tampered = ("0" if seed[0] != "0" else "1") + seed[1:]
    ok, reason = verify(tampered, seed_commitment(seed), ENTRANTS, 3, winners)
    assert not ok
    assert "commit" in reason
    ok, reason = verify(seed, seed_commitment(seed), ENTRANTS, 3, ("c0", "c1", "c2"))
    assert not ok or draw(seed, ENTRANTS, 3) == ("c0", "c1", "c2")


def test_weighting_favours_thoughtful_entrants() -> None:
    entrants = [Entrant("heavy", weight=5)] + [Entrant(f"c{i}") for i in range(9)]
    wins = Counter(draw(f"seed-{n}", entrants, 1)[0] for n in range(3000))
    # Weight 5 of 14 in total: about 36% of draws against about 7% for each other entrant.
    assert wins["heavy"] > 2 * max(count for who, count in wins.items() if who != "heavy")


@given(st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=30), st.integers(0, 10), st.text())
def test_winners_are_a_subset_of_entrants(ids: list[str], k: int, seed: str) -> None:
    winners = draw(seed, [Entrant(i) for i in ids], k)
    assert len(winners) == min(k, len(ids))
    assert set(winners) <= set(ids)
    assert len(set(winners)) == len(winners)
