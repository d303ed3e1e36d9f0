"""The rule language compiled to one SQL predicate over the facts tables (full recompute of a segment).

Pure string building: the caller binds `params` and runs it. Every leaf is written so it is never NULL
(`coalesce`, `IS DISTINCT FROM`, `IN` over non-null ids), so `NOT` is the complement exactly as in
Python. Activity leaves become semi-joins against grouped subqueries, which Postgres hashes once per
query instead of probing per customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .facts import AGE_BANDS, OLDEST_AGE_BAND
from .rules import (
    AllOf,
    AnyOf,
    Favorited,
    HasTag,
    InSegment,
    LifecycleIs,
    NotRule,
    ProfileIs,
    Purchased,
    Refunded,
    RfmScore,
    Rule,
    window_start,
)

_SQL_COMPARE = {"eq": "=", "ne": "<>", "gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}


@dataclass
class CompiledSql:
    """`predicate` is a boolean expression over `customers c`; `merchant` is bound as `:merchant`."""

    predicate: str
    params: dict[str, Any] = field(default_factory=dict)

    def select_members(self) -> str:
        return f"SELECT c.customer_id FROM customers c WHERE c.merchant_id = :merchant AND ({self.predicate})"


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def compile(self, rule: Rule) -> str:
        match rule:
            case AllOf(all=parts):
                return "(" + " AND ".join(self.compile(p) for p in parts) + ")"
            case AnyOf(any=parts):
                return "(" + " OR ".join(self.compile(p) for p in parts) + ")"
            case NotRule(not_=inner):
                return f"(NOT {self.compile(inner)})"
            case ProfileIs():
                return self._profile(rule)
            case HasTag():
                return self._member_of(rule.segment_key)
            case InSegment(segment=key):
                return self._member_of(key)
            case LifecycleIs(stage=stage):
                return f"(c.lifecycle = {self.bind(stage)})"
            case RfmScore(score=score, op=op, value=value):
                return f"coalesce(c.{score}_score {_SQL_COMPARE[op]} {self.bind(value)}, false)"
            case Purchased() | Refunded() | Favorited():
                return self._activity(rule)
        raise AssertionError(f"unhandled rule node {rule!r}")

    def _member_of(self, key: str) -> str:
        return (
            "c.customer_id IN (SELECT sm.customer_id FROM segment_memberships sm "
            f"WHERE sm.merchant_id = :merchant AND sm.segment_key = {self.bind(key)})"
        )

    def _profile_value(self, name: str) -> str:
        if name != "age_band":
            return f"c.{name}"
        year = self.bind(self.now.year)
        whens = " ".join(f"WHEN {year} - c.birth_year < {upper} THEN '{band}'" for upper, band in AGE_BANDS)
        return f"(CASE WHEN c.birth_year IS NULL THEN NULL {whens} ELSE '{OLDEST_AGE_BAND}' END)"

    def _profile(self, rule: ProfileIs) -> str:
        column = self._profile_value(rule.field)
        match rule.op:
            case "eq":
                return f"coalesce({column} = {self.bind(rule.value)}, false)"
            case "ne":
                return f"({column} IS DISTINCT FROM {self.bind(rule.value)})"
            case "in":
                return f"coalesce({column} = ANY({self.bind(list(rule.value or ()))}), false)"
            case "not_in":
                return f"(NOT coalesce({column} = ANY({self.bind(list(rule.value or ()))}), false))"
            case "is_set":
                return f"({column} IS NOT NULL)"
            case "is_not_set":
                return f"({column} IS NULL)"
        raise AssertionError(rule.op)

    def _activity(self, rule: Purchased | Refunded | Favorited) -> str:
        if isinstance(rule, Purchased):
            table, at, counted, amount = (
                "order_lines",
                "paid_at",
                "count(DISTINCT t.order_id)",
                "t.amount_minor",
            )
        elif isinstance(rule, Refunded):
            table, at, counted, amount = (
                "refund_lines",
                "refunded_at",
                "count(DISTINCT t.refund_id)",
                "t.amount_minor",
            )
        else:
            table, at, counted, amount = "favorites", "favorited_at", "count(*)", "0"
        where = ["t.merchant_id = :merchant"]
        if rule.product_id is not None:
            where.append(f"t.product_id = {self.bind(rule.product_id)}")
        if rule.category is not None:
            where.append(f"t.category = {self.bind(rule.category)}")
        since = window_start(rule.within_days, self.now)
        if since is not None:
            where.append(f"t.{at} >= {self.bind(since)}")
        having = [f"{counted} >= {self.bind(rule.min_count)}"]
        if rule.max_count is not None:
            having.append(f"{counted} <= {self.bind(rule.max_count)}")
        if not isinstance(rule, Favorited):
            if rule.min_amount is not None:
                having.append(f"sum({amount}) >= {self.bind(rule.min_amount)}")
            if rule.max_amount is not None:
                having.append(f"sum({amount}) <= {self.bind(rule.max_amount)}")
        return (
            f"c.customer_id IN (SELECT t.customer_id FROM {table} t WHERE {' AND '.join(where)} "
            f"GROUP BY t.customer_id HAVING {' AND '.join(having)})"
        )


def compile_sql(rule: Rule, now: datetime) -> CompiledSql:
    compiler = _Compiler(now)
    predicate = compiler.compile(rule)
    return CompiledSql(predicate, compiler.params)
