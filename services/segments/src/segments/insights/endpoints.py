"""HTTP API of the read models: customer 360 and group metrics."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.errors import NotFound, field_problem

from ..domain.builtins import DEFAULT_POLICY, preferred_categories
from ..domain.facts import age_band
from ..uow import SegmentsUoW
from .repository import InsightsRepository
from .schemas import Customer360, GroupDay, GroupMetrics, Profile, PurchaseSummary, Rfm, SegmentRef

router = APIRouter(tags=["insights"])
MAX_METRIC_DAYS = 92


@router.get(
    "/v1/customers/{customer_id}", response_model=Customer360, summary="Customer 360: facts, segments, tags"
)
async def customer_360(customer_id: str, principal: CurrentPrincipal, uow: SegmentsUoW) -> Customer360:
    principal.require_customer_access(customer_id)
    merchant = principal.merchant_id
    facts = (await uow.facts.load(merchant, [customer_id], lock=False)).get(customer_id)
    if facts is None:
        raise NotFound("customer", customer_id)
    insights = InsightsRepository(uow.session)
    summary = await insights.customer_summary(merchant, customer_id) or {}
    names = await insights.segment_names(merchant)
    memberships = await insights.memberships(merchant, customer_id)
    tags: dict[str, list[str]] = defaultdict(list)
    for key, _at in memberships:
        if key.startswith("tag:"):
            _prefix, name, value = key.split(":", 2)
            tags[name].append(value)
    return Customer360(
        customer_id=customer_id,
        profile=Profile(
            gender=facts.gender,
            birth_year=facts.birth_year,
            age_band=age_band(facts.birth_year, datetime.now(UTC).year),
            city=facts.city,
            size=facts.size,
            channel=facts.channel,
        ),
        lifecycle=facts.lifecycle,
        tier_rank=facts.tier_rank,
        rfm=Rfm(r=facts.r_score, f=facts.f_score, m=facts.m_score),
        purchases=PurchaseSummary(
            orders=int(summary.get("orders") or 0),
            spent_minor=int(summary.get("spent") or 0),
            refunded_minor=sum(r.amount_minor for r in facts.refunds),
            refunds=len({r.refund_id for r in facts.refunds}),
            complaints=len({r.refund_id for r in facts.refunds if r.is_complaint}),
            first_paid_at=summary.get("first_paid"),
            last_paid_at=summary.get("last_paid"),
            top_categories=preferred_categories(facts, DEFAULT_POLICY.preference_top_categories),
        ),
        favorites=sorted(f.product_id for f in facts.favorites),
        groups=sorted(facts.active_group_ids),
        group_activities_30d=int(summary.get("activities_30d") or 0),
        referrals_made=facts.referrals_made,
        referred_buyers=facts.referred_buyers,
        tags=dict(tags),
        segments=[SegmentRef(key=k, name=names.get(k), entered_at=at) for k, at in memberships],
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@router.get(
    "/v1/groups/{group_id}/metrics", response_model=GroupMetrics, summary="Per-day metrics of one group"
)
async def group_metrics(
    group_id: str,
    principal: StaffPrincipal,
    uow: SegmentsUoW,
    first: Annotated[
        date | None, Query(alias="from", description="first UTC day; default 29 days before `to`")
    ] = None,
    last: Annotated[date | None, Query(alias="to", description="last UTC day; default today")] = None,
) -> GroupMetrics:
    last = last or datetime.now(UTC).date()
    if first is None:
        if last < date.min + timedelta(days=29):
            raise field_problem("/to", "too early to count 30 days back; give `from`")
        first = last - timedelta(days=29)
    if first > last:
        raise field_problem("/from", "after `to`")
    if (last - first).days >= MAX_METRIC_DAYS:
        raise field_problem("/from", f"at most {MAX_METRIC_DAYS} days per request")
    rows = await InsightsRepository(uow.session).group_days(principal.merchant_id, group_id, first, last)
    now = datetime.now(UTC)
    days = []
    for row in rows:
        # a join creates its customer, so members are among the customers; the floor guards a member
        # whose customer row was lost (e.g. a partial restore) from a negative rate
        non_members = max(int(row["customers"]) - int(row["size"]), 0)
        days.append(
            GroupDay(
                day=row["day"],
                size=row["size"],
                new_members=row["new_members"],
                daily_active_members=row["active"],
                comments=row["comments"],
                check_ins=row["check_ins"],
                likes=row["likes"],
                # unknown until the 7 days after the day have passed
                revisit_rate=_ratio(row["revisited"], row["active"]) if now >= row["revisit_ends"] else None,
                member_conversion_rate=_ratio(row["member_buyers"], row["size"]),
                non_member_conversion_rate=_ratio(row["other_buyers"], non_members),
                member_aov_minor=_ratio(row["member_amount"], row["member_orders"]),
                non_member_aov_minor=_ratio(row["other_amount"], row["other_orders"]),
            )
        )
    return GroupMetrics(group_id=group_id, days=days)
