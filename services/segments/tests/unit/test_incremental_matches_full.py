"""Property: re-evaluating only the segments an order or a favorite can affect gives the outcome of
re-evaluating every segment, for random rules and random customer histories."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from hypothesis import given, reject, settings
from hypothesis import strategies as st
from segments_strategies import CATEGORIES, NOW, PRODUCTS, days_ago, histories, rules

from segments.domain.evaluation import (
    CompiledSegments,
    CyclicSegments,
    compile_segments,
    reevaluate,
    touched_by_order,
)
from segments.domain.facts import CustomerFacts, Favorite, PurchasedLine
from segments.domain.rules import activity_labels, parse_rule

saved_rules = st.lists(rules, min_size=1, max_size=5)


def _settled(facts: CustomerFacts, compiled: CompiledSegments) -> CustomerFacts:
    """The customer as the service keeps them: memberships and stage from a full evaluation."""
    outcome = reevaluate(facts, NOW, compiled, None)
    return replace(
        facts,
        lifecycle=outcome.lifecycle_after,
        segments=(frozenset(facts.segments) - outcome.exited) | outcome.entered,
    )


def _compiled(raw_rules: list[dict[str, Any]]) -> CompiledSegments:
    # `in_segment` leaves name "vip", so the first rule is saved under that key: segments depend on it.
    keys = ["vip", *(f"s{i}" for i in range(1, len(raw_rules)))]
    try:
        return compile_segments({key: parse_rule(raw) for key, raw in zip(keys, raw_rules, strict=True)}, NOW)
    except CyclicSegments:
        reject()  # the API refuses such a set of segments


def _incremental_and_full(
    after: CustomerFacts, compiled: CompiledSegments, touched: Iterable[str]
) -> tuple[tuple[frozenset[str], frozenset[str], str], ...]:
    """What re-evaluating only the segments `touched` can affect decides, and what re-evaluating every
    segment decides: entries, exits and the lifecycle stage."""
    outcomes = (reevaluate(after, NOW, compiled, frozenset(touched)), reevaluate(after, NOW, compiled, None))
    return tuple((o.entered, o.exited, o.lifecycle_after) for o in outcomes)


@settings(max_examples=400, deadline=None)
@given(raw_rules=saved_rules, history=histories("c"), data=st.data())
def test_after_an_order_only_the_affected_segments_need_reevaluating(
    raw_rules: list[dict[str, Any]], history: CustomerFacts, data: st.DataObject
) -> None:
    compiled = _compiled(raw_rules)
    before = _settled(history, compiled)
    paid_at = data.draw(days_ago)
    new_lines = tuple(
        PurchasedLine(
            "new-order",
            data.draw(st.sampled_from(PRODUCTS)),
            data.draw(st.sampled_from(CATEGORIES)),
            data.draw(st.integers(0, 5000)),
            paid_at,
        )
        for _ in range(data.draw(st.integers(1, 2)))
    )
    channel = data.draw(st.none() | st.sampled_from(["tmall", "jd"]))
    after = replace(before, lines=before.lines + new_lines, channel=before.channel or channel)

    touched = touched_by_order(((x.product_id, x.category) for x in new_lines), channel)
    incremental, full = _incremental_and_full(after, compiled, touched)
    assert incremental == full, (raw_rules, new_lines, touched)


@settings(max_examples=300, deadline=None)
@given(raw_rules=saved_rules, history=histories("c"), data=st.data())
def test_after_a_favorite_only_the_affected_segments_need_reevaluating(
    raw_rules: list[dict[str, Any]], history: CustomerFacts, data: st.DataObject
) -> None:
    compiled = _compiled(raw_rules)
    before = _settled(history, compiled)
    favorite = Favorite(
        data.draw(st.sampled_from(PRODUCTS)), data.draw(st.sampled_from(CATEGORIES)), data.draw(days_ago)
    )
    # A product favorited again is stored once (its first favorite stands).
    known = {f.product_id for f in before.favorites}
    after = (
        before if favorite.product_id in known else replace(before, favorites=(*before.favorites, favorite))
    )

    touched = activity_labels("favorites", [(favorite.product_id, favorite.category)])
    incremental, full = _incremental_and_full(after, compiled, touched)
    assert incremental == full, (raw_rules, favorite, touched)
