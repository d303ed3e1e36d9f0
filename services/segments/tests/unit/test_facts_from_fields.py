"""Facts built from fields (as the facts load builds them) are the facts `__init__` would build."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from segments.domain.facts import CustomerFacts, PurchasedLine
from segments.facts.cache import History
from segments.facts.repository import READ_CUSTOMERS

AT = datetime(2026, 3, 1, tzinfo=UTC)


def test_the_customer_row_and_the_history_name_every_field_once() -> None:
    columns = READ_CUSTOMERS.split("SELECT", 1)[1].split("facts_version", 1)[0]
    row = [name.strip() for name in columns.split(",") if name.strip()]
    assert sorted([*row, *History._fields]) == sorted(f.name for f in fields(CustomerFacts))


def test_facts_from_fields_equal_facts_from_init() -> None:
    values = {
        "customer_id": "c1",
        "gender": "female",
        "birth_year": 1990,
        "city": "Hangzhou",
        "size": "M",
        "channel": "tmall",
        "tier_rank": 2,
        "lifecycle": "repurchase",
        "r_score": 5,
        "f_score": 4,
        "m_score": 3,
        "lines": (PurchasedLine("o1", "p1", "formula", 100, AT),),
        "refunds": (),
        "favorites": (),
        "active_group_ids": frozenset({"g1"}),
        "last_group_activity_at": AT,
        "referrals_made": 1,
        "referred_buyers": 0,
        "segments": frozenset({"lifecycle:repurchase"}),
    }
    built = CustomerFacts.from_fields(dict(values))
    assert built == CustomerFacts(**values)  # type: ignore[arg-type]
    assert built.order_count == 1
    assert built.evaluated("problem", built.segments).lifecycle == "problem"
