"""Built-in segments every merchant has: lifecycle stages, advocacy, RFM quintiles and profile tags.

Keys are namespaced (`lifecycle:new`, `advocacy:fan`, `rfm:r:5`, `tag:preference:milk`) so they never
collide with a merchant's own segment keys, which may not contain a colon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from sys import intern

from .facts import LINE_AMOUNT, CustomerFacts, Lifecycle, age_band


@dataclass(frozen=True)
class Policy:
    """Thresholds of the built-in segments (one policy for every merchant for now)."""

    non_repurchase_after_days: int = 90
    problem_refund_rate: float = 0.5
    problem_complaint_rate: float = 0.2
    fan_active_within_days: int = 30
    preference_top_categories: int = 3
    # Net spend (minor units) at which a customer reaches each spending-power tier.
    spending_tiers: tuple[tuple[int, str], ...] = ((100_000, "high"), (20_000, "medium"), (0, "low"))


DEFAULT_POLICY = Policy()


def lifecycle_stage(facts: CustomerFacts, now: datetime, policy: Policy = DEFAULT_POLICY) -> Lifecycle:
    if not facts.lines:
        return "prospect"
    orders = facts.order_ids
    if facts.refunds:
        refunded_orders = {r.order_id for r in facts.refunds}
        complaints = {r.refund_id for r in facts.refunds if r.is_complaint}
        if (
            len(refunded_orders) / len(orders) > policy.problem_refund_rate
            or len(complaints) / len(orders) > policy.problem_complaint_rate
        ):
            return "problem"
    if len(orders) >= 2:
        return "repurchase"
    last_paid = max(line.paid_at for line in facts.lines)
    if now - last_paid >= timedelta(days=policy.non_repurchase_after_days):
        return "non_repurchase"
    return "new"


def net_spend(facts: CustomerFacts) -> int:
    return sum(map(LINE_AMOUNT, facts.lines)) - sum(map(LINE_AMOUNT, facts.refunds))


def preferred_categories(facts: CustomerFacts, top: int) -> list[str]:
    """The `top` categories by spend, most first, ties by name. A plain dict: a `Counter` costs more to
    create than summing a customer's few lines."""
    spend: dict[str, int] = {}
    for line in facts.lines:
        spend[line.category] = spend.get(line.category, 0) + line.amount_minor
    ranked = sorted(spend.items(), key=lambda item: (-item[1], item[0]))
    return [category for category, _amount in ranked[:top]]


def builtin_segments(facts: CustomerFacts, now: datetime, policy: Policy = DEFAULT_POLICY) -> frozenset[str]:
    """Every built-in segment key the customer belongs to; `facts.lifecycle` must already be current.
    Keys are interned: workers keep every customer's memberships (facts/cache.py), and one string per key
    instead of one per customer halves what they take."""
    keys: set[str] = set()
    if facts.lifecycle != "prospect":
        keys.add(intern(f"lifecycle:{facts.lifecycle}"))
    active_since = now - timedelta(days=policy.fan_active_within_days)
    if (
        facts.active_group_ids
        and facts.last_group_activity_at is not None
        and facts.last_group_activity_at >= active_since
    ):
        keys.add("advocacy:fan")
    if facts.referrals_made > 0:
        keys.add("advocacy:spreader")
    if facts.referred_buyers > 0:
        keys.add("advocacy:distributor")
    for letter, score in (("r", facts.r_score), ("f", facts.f_score), ("m", facts.m_score)):
        if score is not None:
            keys.add(intern(f"rfm:{letter}:{score}"))
    for name in ("gender", "channel", "size"):
        value = getattr(facts, name)
        if value:
            keys.add(intern(f"tag:{name}:{value}"))
    band = age_band(facts.birth_year, now.year)
    if band is not None:
        keys.add(intern(f"tag:age_band:{band}"))
    for category in preferred_categories(facts, policy.preference_top_categories):
        keys.add(intern(f"tag:preference:{category}"))
    if facts.lines:
        spend = net_spend(facts)
        for floor, tier in policy.spending_tiers:
            if spend >= floor:
                keys.add(intern(f"tag:spending_power:{tier}"))
                break
    return frozenset(keys)
