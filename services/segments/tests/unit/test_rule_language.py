"""The rule language: parsing, pointers to bad nodes, dependencies and the Python predicate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from segments.domain.facts import CustomerFacts, Favorite, PurchasedLine, RefundedLine
from segments.domain.rules import InvalidRule, compile_predicate, dependencies, parse_rule, rule_to_json

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def pointers(raw: Any) -> list[str]:
    with pytest.raises(InvalidRule) as caught:
        parse_rule(raw)
    return [p.pointer for p in caught.value.problems]


def test_errors_point_at_the_failing_node_and_field() -> None:
    raw = {
        "kind": "all",
        "all": [
            {"kind": "profile", "field": "gender", "op": "eq", "value": "female"},
            {"kind": "purchased", "category": 7},
        ],
    }
    assert pointers(raw) == ["/rule/all/1/category"]


def test_unknown_fields_unknown_kinds_and_missing_kinds_are_named() -> None:
    assert pointers({"kind": "purchased", "colour": "red"}) == ["/rule/colour"]
    assert pointers({"kind": "any", "any": [{"kind": "telepathy"}]}) == ["/rule/any/0/kind"]
    assert pointers({"kind": "not", "not": {"stage": "new"}}) == ["/rule/not/kind"]
    assert pointers({"kind": "all", "all": []}) == ["/rule/all"]


def test_semantic_errors_point_at_the_field() -> None:
    assert pointers({"kind": "purchased", "min_count": 3, "max_count": 2}) == ["/rule/max_count"]
    assert pointers({"kind": "refunded", "min_amount": 5, "max_amount": 1}) == ["/rule/max_amount"]
    assert pointers({"kind": "profile", "field": "city", "op": "in", "value": "sh"}) == ["/rule/value"]
    assert pointers({"kind": "profile", "field": "city", "op": "is_set", "value": "sh"}) == ["/rule/value"]
    assert pointers({"kind": "favorited", "min_amount": 1}) == ["/rule/min_amount"]


def test_a_bad_value_of_a_union_points_into_the_value_not_at_the_unions_members() -> None:
    assert pointers({"kind": "profile", "field": "city", "op": "in", "value": ["sh", 1]}) == ["/rule/value/1"]
    assert pointers({"kind": "profile", "field": "city", "op": "eq", "value": 1.5}) == ["/rule/value"]


def test_nesting_is_bounded() -> None:
    rule: dict[str, Any] = {"kind": "lifecycle", "stage": "new"}
    for _ in range(9):
        rule = {"kind": "not", "not": rule}
    assert pointers(rule) == ["/rule" + "/not" * 8]


def test_a_rule_survives_a_round_trip() -> None:
    raw = {"kind": "not", "not": {"kind": "purchased", "category": "formula", "within_days": 30}}
    assert parse_rule(rule_to_json(parse_rule(raw))) == parse_rule(raw)


def test_dependencies_name_the_facts_and_segments_a_rule_reads() -> None:
    rule = parse_rule(
        {
            "kind": "any",
            "any": [
                {"kind": "purchased"},
                {"kind": "not", "not": {"kind": "tag", "name": "gender", "value": "female"}},
                {"kind": "in_segment", "segment": "vip"},
                {"kind": "rfm", "score": "r", "op": "gte", "value": 4},
            ],
        }
    )
    found = dependencies(rule)
    assert found.facts == {"orders", "rfm"}
    assert found.segments == {"tag:gender:female", "vip"}

    # Filtered activity is named down to its narrowest filter: only such items can change it.
    filtered = parse_rule(
        {
            "kind": "all",
            "all": [
                {"kind": "purchased", "category": "formula"},
                {"kind": "purchased", "category": "formula", "product_id": "milk-1"},
                {"kind": "favorited", "category": "toys"},
            ],
        }
    )
    assert dependencies(filtered).facts == {
        "orders:category:formula",
        "orders:product:milk-1",
        "favorites:category:toys",
    }


def line(order: str, category: str, amount: int, days_ago: int, product: str = "p") -> PurchasedLine:
    return PurchasedLine(order, product, category, amount, NOW - timedelta(days=days_ago))


def test_purchased_counts_distinct_orders_within_the_window_and_sums_matching_lines() -> None:
    facts = CustomerFacts(
        "c",
        lines=(line("o1", "formula", 300, 5), line("o1", "formula", 200, 5), line("o2", "formula", 100, 40)),
    )
    rule = {"kind": "purchased", "category": "formula", "within_days": 30, "min_count": 1, "min_amount": 500}
    assert compile_predicate(parse_rule(rule), NOW)(facts)
    assert not compile_predicate(parse_rule({**rule, "min_count": 2}), NOW)(facts)
    assert compile_predicate(parse_rule({**rule, "min_count": 2, "within_days": 40}), NOW)(facts)
    assert not compile_predicate(parse_rule({**rule, "min_amount": 501}), NOW)(facts)


def test_rules_that_differ_only_in_thresholds_share_one_scan_of_the_customers_activity() -> None:
    facts = CustomerFacts("c", lines=(line("o1", "formula", 300, 5), line("o2", "toys", 900, 5)))
    spent = {"kind": "purchased", "category": "formula", "within_days": 30}
    verdicts = [
        compile_predicate(parse_rule(rule), NOW)(facts)
        for rule in (
            {**spent, "min_amount": 200},
            {**spent, "min_amount": 400},
            {**spent, "min_count": 2},
            {**spent, "category": "toys", "min_amount": 400},
            {**spent, "within_days": 3, "min_amount": 200},
        )
    ]
    assert verdicts == [True, False, False, True, False]
    # formula in 30 days (three rules), toys in 30 days, formula in 3 days
    assert sorted(count_and_total for count_and_total in facts.activity_totals.values()) == [
        (0, 0), (1, 300), (1, 900)
    ]  # fmt: skip


def test_missing_profile_values_equal_nothing_and_not_is_the_complement() -> None:
    unknown = CustomerFacts("c")
    is_female = parse_rule({"kind": "profile", "field": "gender", "op": "eq", "value": "female"})
    assert not compile_predicate(is_female, NOW)(unknown)
    assert compile_predicate(parse_rule({"kind": "not", "not": rule_to_json(is_female)}), NOW)(unknown)
    not_in = parse_rule({"kind": "profile", "field": "city", "op": "not_in", "value": ["sh"]})
    assert compile_predicate(not_in, NOW)(unknown)


def test_age_band_is_derived_from_the_birth_year_as_of_now() -> None:
    rule = parse_rule({"kind": "profile", "field": "age_band", "op": "eq", "value": "25-34"})
    assert compile_predicate(rule, NOW)(CustomerFacts("c", birth_year=1996))
    assert not compile_predicate(rule, NOW)(CustomerFacts("c", birth_year=1990))


def test_refunded_and_favorited_filter_by_product_and_category() -> None:
    facts = CustomerFacts(
        "c",
        refunds=(RefundedLine("r1", "o1", "p1", "formula", 100, NOW),),
        favorites=(Favorite("p9", "toys", NOW - timedelta(days=100)),),
    )
    assert compile_predicate(parse_rule({"kind": "refunded", "product_id": "p1"}), NOW)(facts)
    assert not compile_predicate(parse_rule({"kind": "refunded", "category": "toys"}), NOW)(facts)
    assert compile_predicate(parse_rule({"kind": "favorited", "category": "toys"}), NOW)(facts)
    assert not compile_predicate(parse_rule({"kind": "favorited", "within_days": 30}), NOW)(facts)
