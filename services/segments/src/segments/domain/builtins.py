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
    orders = facts.order_count
    if facts.refunds:
        refunded_orders = {r.order_id for r in facts.refunds}
        complaints = {r.refund_id for r in facts.refunds if r.is_complaint}
        if (
            len(refunded_orders) / orders > policy.problem_refund_rate
            or len(complaints) / orders > policy.problem_complaint_rate
        ):
            return "problem"
    if orders >= 2:
        return "repurchase"
    last_paid = max(line.paid_at for line in facts.lines)
    if now - last_paid >= timedelta(days=policy.non_repurchase_after_days):
        return "non_repurchase"
    return "new"


def _spend_by_category(facts: CustomerFacts) -> dict[str, int]:
    spend: dict[str, int] = {}
    for line in facts.lines:
        spend[line.category] = spend.get(line.category, 0) + line.amount_minor
    return spend


def _top(spend: dict[str, int], top: int) -> list[str]:
    # (-spend, name) tuples sort in C, most spent first and ties by name, without a key function
    return [category for _minus, category in sorted([(-amount, c) for c, amount in spend.items()])[:top]]


def preferred_categories(facts: CustomerFacts, top: int) -> list[str]:
    """The `top` categories by spend, most first, ties by name. A plain dict: a `Counter` costs more to
    create than summing a customer's few lines."""
    return _top(_spend_by_category(facts), top)


# What the built-in memberships depend on, as a tuple (lifecycle stage, fan, spreader, distributor, r, f,
# m, gender, channel, size, age band, preferred categories, spending tier) -> the keys. Customers share
# few such combinations, so the keys of each are built once per process, and shared.
_Signature = tuple[
    Lifecycle,
    bool,
    bool,
    bool,
    int | None,
    int | None,
    int | None,
    str | None,
    str | None,
    str | None,
    str | None,
    tuple[str, ...],
    str | None,
]
_KEYS_BY_SIGNATURE: dict[_Signature, frozenset[str]] = {}
_MAX_SIGNATURES = 100_000


def builtin_segments(
    facts: CustomerFacts, now: datetime, policy: Policy = DEFAULT_POLICY, *, stage: Lifecycle | None = None
) -> frozenset[str]:
    """Every built-in segment key the customer belongs to, at `stage` (by default `facts.lifecycle`, which
    must then be current). Keys are interned: workers keep every customer's memberships (facts/cache.py),
    and one string per key instead of one per customer halves what they take."""
    preferred: tuple[str, ...] = ()
    tier: str | None = None
    if facts.lines:
        spend = _spend_by_category(facts)
        top = policy.preference_top_categories
        # with no more categories than are preferred, all of them are, whatever their order
        preferred = tuple(sorted(spend)) if len(spend) <= top else tuple(sorted(_top(spend, top)))
        net = sum(spend.values()) - sum(map(LINE_AMOUNT, facts.refunds))
        for floor, name in policy.spending_tiers:
            if net >= floor:
                tier = name
                break
    last_activity = facts.last_group_activity_at
    signature = (
        facts.lifecycle if stage is None else stage,
        bool(facts.active_group_ids)
        and last_activity is not None
        and last_activity >= now - timedelta(days=policy.fan_active_within_days),
        facts.referrals_made > 0,
        facts.referred_buyers > 0,
        facts.r_score,
        facts.f_score,
        facts.m_score,
        facts.gender,
        facts.channel,
        facts.size,
        age_band(facts.birth_year, now.year),
        preferred,
        tier,
    )
    keys = _KEYS_BY_SIGNATURE.get(signature)
    if keys is None:
        if len(_KEYS_BY_SIGNATURE) >= _MAX_SIGNATURES:
            _KEYS_BY_SIGNATURE.clear()
        keys = _KEYS_BY_SIGNATURE[signature] = _keys_of(signature)
    return keys


def _keys_of(signature: _Signature) -> frozenset[str]:
    stage, fan, spreader, distributor, r, f, m, gender, channel, size, band, preferred, tier = signature
    keys: set[str] = set()
    if stage != "prospect":
        keys.add(f"lifecycle:{stage}")
    if fan:
        keys.add("advocacy:fan")
    if spreader:
        keys.add("advocacy:spreader")
    if distributor:
        keys.add("advocacy:distributor")
    for letter, score in (("r", r), ("f", f), ("m", m)):
        if score is not None:
            keys.add(f"rfm:{letter}:{score}")
    for name, value in (("gender", gender), ("channel", channel), ("size", size)):
        if value:
            keys.add(f"tag:{name}:{value}")
    if band is not None:
        keys.add(f"tag:age_band:{band}")
    for category in preferred:
        keys.add(f"tag:preference:{category}")
    if tier is not None:
        keys.add(f"tag:spending_power:{tier}")
    return frozenset(map(intern, keys))
