from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.domain.invites import InviteTerms, may_send_smart_invite, refusal
from membership.domain.join_rules import CustomerStanding, JoinRules, failed_rules
from membership.domain.placement import OpenSubgroup, SeatIn, SetFull, SubgroupSeats, place
from membership.domain.projection import supersedes

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_places_in_first_subgroup_with_room() -> None:
    seats = [SubgroupSeats(1, 5, 5), SubgroupSeats(2, 5, 3), SubgroupSeats(3, 5, 0)]
    assert place(seats, capacity=5, max_subgroups=10) == SeatIn(2)


def test_reuses_a_freed_seat_in_an_earlier_subgroup() -> None:
    seats = [SubgroupSeats(1, 5, 4), SubgroupSeats(2, 5, 5)]
    assert place(seats, capacity=5, max_subgroups=2) == SeatIn(1)


def test_opens_the_next_subgroup_when_all_are_full() -> None:
    assert place([], capacity=5, max_subgroups=3) == OpenSubgroup(1)
    assert place(
        [SubgroupSeats(1, 5, 5), SubgroupSeats(2, 5, 5)], capacity=5, max_subgroups=3
    ) == OpenSubgroup(3)


def test_refuses_when_the_set_is_full() -> None:
    full = [SubgroupSeats(n, 5, 5) for n in (1, 2, 3)]
    assert place(full, capacity=5, max_subgroups=3) == SetFull(capacity=15)


@given(
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=200),
    st.integers(1, 8),
    st.integers(1, 6),
)
def test_sequential_placement_never_overfills(
    joins_and_leaves: list[int], capacity: int, max_subgroups: int
) -> None:
    """Any sequence of joins keeps every sub-group within capacity and fills them in order."""
    counts: dict[int, int] = {}
    for _ in joins_and_leaves:
        seats = [SubgroupSeats(n, capacity, c) for n, c in counts.items()]
        match place(seats, capacity=capacity, max_subgroups=max_subgroups):
            case SeatIn(number=n):
                counts[n] += 1
            case OpenSubgroup(number=n):
                assert all(c == capacity for c in counts.values())
                counts[n] = 1
            case SetFull():
                assert len(counts) == max_subgroups
                assert all(c == capacity for c in counts.values())
    assert all(0 < c <= capacity for c in counts.values())
    assert len(counts) <= max_subgroups


RULES = JoinRules(
    required_segments=frozenset({"bought:milk-powder", "bought:formula"}),
    required_mode="any",
    excluded_segments=frozenset({"lifecycle:problem"}),
    min_tier_rank=2,
)


def test_eligible_customer_fails_no_rule() -> None:
    assert failed_rules(RULES, CustomerStanding(frozenset({"bought:formula"}), tier_rank=3)) == ()


def test_any_versus_all_required_segments() -> None:
    standing = CustomerStanding(frozenset({"bought:formula"}), tier_rank=5)
    all_rules = JoinRules(required_segments=RULES.required_segments, required_mode="all")
    (failure,) = failed_rules(all_rules, standing)
    assert failure.rule == "required_segments"
    assert failure.segments == ("bought:milk-powder",)


def test_reports_every_failed_rule_exclusion_first() -> None:
    standing = CustomerStanding(frozenset({"lifecycle:problem"}), tier_rank=1)
    assert [f.rule for f in failed_rules(RULES, standing)] == [
        "excluded_segments",
        "required_segments",
        "min_tier_rank",
    ]


def test_tier_failure_names_the_required_rank() -> None:
    (failure,) = failed_rules(JoinRules(min_tier_rank=2), CustomerStanding(tier_rank=1))
    assert failure.required_tier_rank == 2


def _invite(**overrides: object) -> InviteTerms:
    values: dict[str, object] = {
        "kind": "link",
        "inviter_customer_id": None,
        "invitee_customer_id": None,
        "expires_at": None,
        "max_uses": None,
        "use_count": 0,
        "revoked": False,
    }
    values.update(overrides)
    return InviteTerms(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "customer", "expected"),
    [
        ({}, "c1", None),
        ({"revoked": True}, "c1", "revoked"),
        ({"expires_at": NOW}, "c1", "expired"),
        ({"expires_at": NOW + timedelta(seconds=1)}, "c1", None),
        ({"max_uses": 2, "use_count": 2}, "c1", "used_up"),
        ({"max_uses": 2, "use_count": 1}, "c1", None),
        ({"kind": "smart", "invitee_customer_id": "c2"}, "c1", "not_for_you"),
        ({"kind": "referral", "inviter_customer_id": "c1"}, "c1", "self_referral"),
    ],
)
def test_invite_refusals(overrides: dict[str, object], customer: str, expected: str | None) -> None:
    assert refusal(_invite(**overrides), customer_id=customer, now=NOW) == expected


def test_smart_invite_allowance() -> None:
    assert may_send_smart_invite(2, per_week=3)
    assert not may_send_smart_invite(3, per_week=3)
    assert not may_send_smart_invite(0, per_week=0)


def test_only_strictly_newer_facts_supersede() -> None:
    assert supersedes(NOW, None)
    assert supersedes(NOW, NOW - timedelta(seconds=1))
    assert not supersedes(NOW, NOW)
    assert not supersedes(NOW - timedelta(seconds=1), NOW)
