"""Property: for random rules and random customer histories, the SQL compilation run on the real
Postgres selects exactly the customers the Python predicate accepts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segments_strategies import NOW, histories, rules
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from meadow_runtime.db import create_engine
from meadow_runtime.settings import Settings
from segments.domain.facts import CustomerFacts
from segments.domain.rules import RULE_ADAPTER, Rule, compile_predicate
from segments.domain.sql import compile_sql

_merchants = count(1)


@pytest.fixture(scope="module")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, pool_size=2)
    yield engine
    await engine.dispose()


async def _store(engine: AsyncEngine, merchant: str, customers: list[CustomerFacts]) -> None:
    async with engine.begin() as conn:
        for c in customers:
            await conn.execute(
                text(
                    "INSERT INTO customers (merchant_id, customer_id, gender, birth_year, city, size, "
                    "channel, lifecycle, r_score, f_score, m_score) "
                    "VALUES (:m, :c, :g, :b, :city, :size, :ch, :l, :r, :f, :mm)"
                ),
                {
                    "m": merchant,
                    "c": c.customer_id,
                    "g": c.gender,
                    "b": c.birth_year,
                    "city": c.city,
                    "size": c.size,
                    "ch": c.channel,
                    "l": c.lifecycle,
                    "r": c.r_score,
                    "f": c.f_score,
                    "mm": c.m_score,
                },
            )
            for i, line in enumerate(c.lines):
                await conn.execute(
                    text("INSERT INTO order_lines VALUES (:m, :o, :l, :c, :p, :cat, :a, :at)"),
                    {
                        "m": merchant,
                        "o": line.order_id,
                        "l": f"l{i}",
                        "c": c.customer_id,
                        "p": line.product_id,
                        "cat": line.category,
                        "a": line.amount_minor,
                        "at": line.paid_at,
                    },
                )
            for r in c.refunds:
                await conn.execute(
                    text("INSERT INTO refund_lines VALUES (:m, :r, 'l', :o, :c, :p, :cat, :a, :at, :k)"),
                    {
                        "m": merchant,
                        "r": r.refund_id,
                        "o": r.order_id,
                        "c": c.customer_id,
                        "p": r.product_id,
                        "cat": r.category,
                        "a": r.amount_minor,
                        "at": r.refunded_at,
                        "k": r.is_complaint,
                    },
                )
            for f in c.favorites:
                await conn.execute(
                    text("INSERT INTO favorites VALUES (:m, :c, :p, :cat, :at)"),
                    {
                        "m": merchant,
                        "c": c.customer_id,
                        "p": f.product_id,
                        "cat": f.category,
                        "at": f.favorited_at,
                    },
                )
            for key in c.segments:
                await conn.execute(
                    text(
                        "INSERT INTO segment_memberships (merchant_id, segment_key, customer_id) "
                        "VALUES (:m, :k, :c)"
                    ),
                    {"m": merchant, "k": key, "c": c.customer_id},
                )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_rule=rules, data=st.data())
async def test_sql_and_python_select_the_same_customers(
    engine: AsyncEngine, raw_rule: dict[str, Any], data: st.DataObject
) -> None:
    rule: Rule = RULE_ADAPTER.validate_python(raw_rule)
    merchant = f"prop-{next(_merchants)}"
    customers = [data.draw(histories(f"c{i}")) for i in range(data.draw(st.integers(1, 6)))]
    await _store(engine, merchant, customers)
    # Another merchant with the same customer ids must never leak into the answer.
    await _store(engine, f"{merchant}-other", customers)

    predicate = compile_predicate(rule, NOW)
    expected = {c.customer_id for c in customers if predicate(c)}
    compiled = compile_sql(rule, NOW)
    async with engine.connect() as conn:
        result = await conn.execute(
            text(compiled.select_members()), {"merchant": merchant, **compiled.params}
        )
        selected = {row[0] for row in result}
    assert selected == expected, (raw_rule, compiled.predicate)
