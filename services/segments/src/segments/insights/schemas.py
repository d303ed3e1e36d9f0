"""Response bodies of the customer 360 and group metrics API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class Profile(BaseModel):
    gender: str | None
    birth_year: int | None
    age_band: str | None
    city: str | None
    size: str | None
    channel: str | None


class PurchaseSummary(BaseModel):
    orders: int
    spent_minor: int
    refunded_minor: int
    refunds: int
    complaints: int
    first_paid_at: datetime | None
    last_paid_at: datetime | None
    top_categories: list[str]


class Rfm(BaseModel):
    r: int | None
    f: int | None
    m: int | None


class SegmentRef(BaseModel):
    key: str
    name: str | None = Field(description="for merchant segments; built-ins are named by their key")
    entered_at: datetime


class Customer360(BaseModel):
    customer_id: str
    profile: Profile
    lifecycle: str
    tier_rank: int
    rfm: Rfm
    purchases: PurchaseSummary
    favorites: list[str] = Field(description="favorited product ids")
    groups: list[str] = Field(description="groups the customer is an active member of")
    group_activities_30d: int
    referrals_made: int
    referred_buyers: int
    tags: dict[str, list[str]]
    segments: list[SegmentRef]


class GroupDay(BaseModel):
    day: date
    size: int = Field(description="members at the end of the day (UTC)")
    new_members: int
    daily_active_members: int = Field(description="members who commented, checked in or liked that day")
    comments: int = Field(description="comments, buyer shows and questions (check-ins and likes apart)")
    check_ins: int
    likes: int = Field(description="likes of posts given that day by customers in this group")
    revisit_rate: float | None = Field(
        description="share of the day's active members active again within the 7 days after it; null "
        "until those 7 days have passed, or when no member was active"
    )
    member_conversion_rate: float | None = Field(
        description="members (at the day's end) who ordered that day / members"
    )
    non_member_conversion_rate: float | None = Field(
        description="other customers known by the day's end who ordered that day / those customers"
    )
    member_aov_minor: float | None = Field(description="average order value of members' orders that day")
    non_member_aov_minor: float | None


class GroupMetrics(BaseModel):
    group_id: str
    days: list[GroupDay]
