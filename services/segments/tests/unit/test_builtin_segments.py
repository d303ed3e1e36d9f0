"""Lifecycle stages, advocacy, tags and incremental re-evaluation, as pure functions."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from segments.domain.builtins import builtin_segments, lifecycle_stage, preferred_categories
from segments.domain.evaluation import compile_segments, dependency_order, reevaluate
from segments.domain.facts import CustomerFacts, PurchasedLine, RefundedLine
from segments.domain.rules import parse_rule

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def paid(order: str, days_ago: int, category: str = "formula", amount: int = 1000) -> PurchasedLine:
    return PurchasedLine(order, "p", category, amount, NOW - timedelta(days=days_ago))


def refund(order: str, complaint: bool = False) -> RefundedLine:
    return RefundedLine(f"r-{order}", order, "p", "formula", 100, NOW, complaint)


def test_lifecycle_stages() -> None:
    assert lifecycle_stage(CustomerFacts("c"), NOW) == "prospect"
    assert lifecycle_stage(CustomerFacts("c", lines=(paid("o1", 10),)), NOW) == "new"
    assert lifecycle_stage(CustomerFacts("c", lines=(paid("o1", 90),)), NOW) == "non_repurchase"
    assert lifecycle_stage(CustomerFacts("c", lines=(paid("o1", 200), paid("o2", 100))), NOW) == "repurchase"
    two_orders = (paid("o1", 20), paid("o2", 10))
    assert lifecycle_stage(CustomerFacts("c", lines=two_orders, refunds=(refund("o1"),)), NOW) == "repurchase"
    assert (
        lifecycle_stage(CustomerFacts("c", lines=two_orders, refunds=(refund("o1"), refund("o2"))), NOW)
        == "problem"
    )
    assert (
        lifecycle_stage(CustomerFacts("c", lines=two_orders, refunds=(refund("o1", True),)), NOW) == "problem"
    )


def test_tags_and_advocacy() -> None:
    facts = CustomerFacts(
        "c",
        gender="female",
        birth_year=2000,
        channel="tmall",
        lifecycle="new",
        lines=(
            paid("o1", 1, "formula", 30_000),
            paid("o1", 1, "toys", 1_000),
            paid("o1", 1, "diapers", 2_000),
        ),
        active_group_ids=frozenset({"g"}),
        last_group_activity_at=NOW - timedelta(days=3),
        referrals_made=1,
        r_score=5,
    )
    assert builtin_segments(facts, NOW) == {
        "lifecycle:new",
        "advocacy:fan",
        "advocacy:spreader",
        "rfm:r:5",
        "tag:gender:female",
        "tag:channel:tmall",
        "tag:age_band:25-34",
        "tag:preference:formula",
        "tag:preference:diapers",
        "tag:preference:toys",
        "tag:spending_power:medium",
    }
    quiet = CustomerFacts(
        "c", active_group_ids=frozenset({"g"}), last_group_activity_at=NOW - timedelta(days=31)
    )
    assert "advocacy:fan" not in builtin_segments(quiet, NOW)


def test_preferred_categories_rank_by_spend_then_name() -> None:
    lines = (
        paid("o1", 1, "toys", 500),
        paid("o1", 1, "formula", 300),
        paid("o2", 1, "formula", 300),
        paid("o2", 1, "diapers", 600),
        paid("o3", 1, "clothes", 600),
    )
    facts = CustomerFacts("c", lines=lines)
    assert preferred_categories(facts, 3) == ["clothes", "diapers", "formula"]
    assert preferred_categories(facts, 10) == ["clothes", "diapers", "formula", "toys"]


def test_only_segments_reading_touched_facts_are_reevaluated() -> None:
    rules = {
        "buyers": parse_rule({"kind": "purchased"}),
        "women": parse_rule({"kind": "profile", "field": "gender", "op": "eq", "value": "female"}),
        "women-buyers": parse_rule(
            {
                "kind": "all",
                "all": [
                    {"kind": "in_segment", "segment": "buyers"},
                    {"kind": "in_segment", "segment": "women"},
                ],
            }
        ),
    }
    compiled = compile_segments(rules, NOW)
    assert [s.key for s in compiled].index("women-buyers") == 2
    # Stale membership in "women" is kept when only orders changed: it was not re-evaluated.
    facts = CustomerFacts("c", gender="female", lines=(paid("o1", 1),), segments=frozenset())
    outcome = reevaluate(facts, NOW, compiled, frozenset({"orders"}))
    assert {"buyers", "lifecycle:new"} <= outcome.entered
    assert "women" not in outcome.entered
    assert "women-buyers" not in outcome.entered
    everything = reevaluate(facts, NOW, compiled, None)
    assert {"buyers", "women", "women-buyers"} <= everything.entered
    assert everything.lifecycle_before == "prospect"
    assert everything.lifecycle_after == "new"


def test_a_second_evaluation_changes_nothing() -> None:
    compiled = compile_segments({"buyers": parse_rule({"kind": "purchased"})}, NOW)
    facts = CustomerFacts("c", lines=(paid("o1", 1),))
    first = reevaluate(facts, NOW, compiled, None)
    settled = CustomerFacts(
        "c", lines=(paid("o1", 1),), lifecycle=first.lifecycle_after, segments=first.entered
    )
    second = reevaluate(settled, NOW, compiled, None)
    assert second.entered == second.exited == frozenset()


def test_cycles_are_detected() -> None:
    import pytest

    from segments.domain.evaluation import CyclicSegments

    with pytest.raises(CyclicSegments):
        dependency_order({"a": ["b"], "b": ["a"]})
    assert dependency_order({"a": ["b"], "b": ["lifecycle:new"]}) == ["b", "a"]


def test_ordering_segments_leaves_no_cycle_for_the_collector() -> None:
    """Workers run the garbage collector on a clock (meadow_runtime.heap): what each batch does must
    be freed by reference counting alone."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        assert dependency_order({"c": ["a"], "a": ["b"], "b": []}) == ["b", "a", "c"]
        compile_segments({"s": parse_rule({"kind": "in_segment", "segment": "lifecycle:new"})}, NOW)
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()
