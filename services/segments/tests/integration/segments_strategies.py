"""Hypothesis strategies for random segment rules and random customer histories, shared by the
property tests (SQL against Python, incremental against full evaluation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from segments.domain.facts import CustomerFacts, Favorite, PurchasedLine, RefundedLine

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PRODUCTS, CATEGORIES = ["p1", "p2", "p3"], ["a", "b"]
SEGMENT_POOL = ["vip", "tag:gender:female", "tag:preference:a", "lifecycle:new"]

maybe = st.none().__or__
days_ago = st.integers(0, 200).map(lambda d: NOW - timedelta(days=d))
profile_value = {
    "gender": maybe(st.sampled_from(["female", "male", "unknown"])),
    "city": maybe(st.sampled_from(["sh", "bj"])),
    "size": maybe(st.sampled_from(["S", "M"])),
    "channel": maybe(st.sampled_from(["tmall", "jd"])),
}


@st.composite
def histories(draw: st.DrawFn, customer_id: str) -> CustomerFacts:
    lines: list[PurchasedLine] = []
    for order in range(draw(st.integers(0, 3))):
        paid_at = draw(days_ago)
        for line in range(draw(st.integers(1, 2))):
            lines.append(
                PurchasedLine(
                    f"{customer_id}-o{order}",
                    draw(st.sampled_from(PRODUCTS)) + f"#{line}"[:0],
                    draw(st.sampled_from(CATEGORIES)),
                    draw(st.integers(0, 5000)),
                    paid_at,
                )
            )
    refunds = [
        RefundedLine(
            f"{customer_id}-r{i}",
            line.order_id,
            line.product_id,
            line.category,
            line.amount_minor,
            draw(days_ago),
            draw(st.booleans()),
        )
        for i, line in enumerate(lines)
        if draw(st.booleans())
    ]
    favorites = {
        product: Favorite(product, draw(st.sampled_from(CATEGORIES)), draw(days_ago))
        for product in draw(st.lists(st.sampled_from(PRODUCTS), max_size=3))
    }
    return CustomerFacts(
        customer_id=customer_id,
        gender=draw(profile_value["gender"]),
        birth_year=draw(maybe(st.sampled_from([1960, 1990, 2003, 2012]))),
        city=draw(profile_value["city"]),
        size=draw(profile_value["size"]),
        channel=draw(profile_value["channel"]),
        lifecycle=draw(st.sampled_from(["prospect", "new", "repurchase", "non_repurchase", "problem"])),
        r_score=draw(maybe(st.integers(1, 5))),
        f_score=draw(maybe(st.integers(1, 5))),
        m_score=draw(maybe(st.integers(1, 5))),
        lines=tuple(lines),
        refunds=tuple(refunds),
        favorites=tuple(favorites.values()),
        segments=frozenset(draw(st.lists(st.sampled_from(SEGMENT_POOL), max_size=3))),
    )


def _activity(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    amounts = kind != "favorited"
    return st.fixed_dictionaries(
        {"kind": st.just(kind)},
        optional={
            "product_id": st.sampled_from(PRODUCTS),
            "category": st.sampled_from(CATEGORIES),
            "within_days": st.sampled_from([1, 30, 90, 150]),
            "min_count": st.integers(1, 2),
            "max_count": st.integers(2, 3),
            **(
                {"min_amount": st.integers(0, 6000), "max_amount": st.integers(6000, 9000)} if amounts else {}
            ),
        },
    )


leaves = st.one_of(
    st.builds(
        lambda f, op, v, vs: (
            {"kind": "profile", "field": f, "op": op}
            | ({"value": v} if op in ("eq", "ne") else {"value": vs} if op in ("in", "not_in") else {})
        ),
        st.sampled_from(["gender", "age_band", "city", "size", "channel"]),
        st.sampled_from(["eq", "ne", "in", "not_in", "is_set", "is_not_set"]),
        st.sampled_from(["female", "male", "sh", "M", "tmall", "25-34", "35-44", "<18", "55+"]),
        st.lists(st.sampled_from(["female", "bj", "S", "jd", "18-24", "55+"]), min_size=1, max_size=3),
    ),
    st.builds(lambda v: {"kind": "tag", "name": "gender", "value": v}, st.sampled_from(["female", "male"])),
    _activity("purchased"),
    _activity("refunded"),
    _activity("favorited"),
    st.builds(
        lambda s, op, v: {"kind": "rfm", "score": s, "op": op, "value": v},
        st.sampled_from(["r", "f", "m"]),
        st.sampled_from(["eq", "ne", "gte", "lte", "gt", "lt"]),
        st.integers(1, 5),
    ),
    st.builds(lambda s: {"kind": "lifecycle", "stage": s}, st.sampled_from(["new", "repurchase", "problem"])),
    st.builds(lambda s: {"kind": "in_segment", "segment": s}, st.sampled_from(["vip", "lifecycle:new"])),
)
rules = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda parts: {"kind": "all", "all": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda parts: {"kind": "any", "any": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda part: {"kind": "not", "not": part}, inner),
    ),
    max_leaves=6,
)
