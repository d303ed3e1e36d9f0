"""Request and response bodies of posts, schedules and campaigns."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl

from meadow_contracts.events import PostKind

ScheduleKind = Literal["now", "at", "cron", "best_time"]
PostStatus = Literal["draft", "scheduled", "published", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleIn(Strict):
    kind: ScheduleKind
    at: AwareDatetime | None = Field(default=None, description="for kind 'at'")
    cron: str | None = Field(default=None, max_length=120, description="for kind 'cron', merchant's zone")


class ProductIn(Strict):
    product_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    price_minor: int | None = Field(default=None, ge=0)
    url: HttpUrl | None = None


class PollOptionIn(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    label: str = Field(min_length=1, max_length=200)


class PollIn(Strict):
    options: list[PollOptionIn] = Field(min_length=2, max_length=20)
    closes_at: AwareDatetime | None = None


class EarlyAccessIn(Strict):
    min_tier_rank: int = Field(ge=1, description="members at or above this tier rank see it first")
    public_at: AwareDatetime


class FlashSaleIn(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    stock_note: str | None = Field(default=None, max_length=200)


class CheckInLotteryIn(Strict):
    """A check-in call's own lottery: one draw per local day among that day's check-ins."""

    draw_time: time = Field(description="merchant-local time of each day's draw")
    winners: int = Field(ge=1, le=1000)
    prize_points: int = Field(ge=0, le=1_000_000)
    thoughtful_weight: int = Field(default=1, ge=1, le=100)
    days: int = Field(default=1, ge=1, le=31, description="days from publication that get a lottery")


class PostIn(Strict):
    kind: PostKind
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=5000)
    group_ids: list[UUID] = Field(default_factory=list, max_length=100)
    segment_ids: list[UUID] = Field(default_factory=list, max_length=100)
    image_urls: list[HttpUrl] = Field(default_factory=list, max_length=9)
    video_url: HttpUrl | None = None
    product: ProductIn | None = None
    poll: PollIn | None = None
    early_access: EarlyAccessIn | None = None
    flash_sale: FlashSaleIn | None = None
    check_in_lottery: CheckInLotteryIn | None = Field(default=None, description="check-in calls only")
    schedule: ScheduleIn | None = Field(default=None, description="absent: saved as a draft")


class PostPatch(Strict):
    """Fields to change on a draft or scheduled post; absent fields stay as they are."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=5000)
    group_ids: list[UUID] | None = Field(default=None, max_length=100)
    segment_ids: list[UUID] | None = Field(default=None, max_length=100)
    image_urls: list[HttpUrl] | None = Field(default=None, max_length=9)
    video_url: HttpUrl | None = None
    product: ProductIn | None = None
    poll: PollIn | None = None
    early_access: EarlyAccessIn | None = None
    flash_sale: FlashSaleIn | None = None
    schedule: ScheduleIn | None = None


class ScheduleMoveOut(BaseModel):
    reason: Literal["quiet_hours", "frequency_cap"]
    group_id: UUID
    from_at: datetime
    to_at: datetime
    detail: str


class PostOut(BaseModel):
    id: UUID
    kind: PostKind
    title: str
    body: str
    details: dict[str, Any]
    group_ids: list[UUID]
    segment_ids: list[UUID]
    campaign_id: UUID | None
    series_id: UUID | None
    status: PostStatus
    schedule_kind: ScheduleKind | None
    cron: str | None
    requested_at: datetime | None = Field(
        description="when the merchant asked for, before caps and quiet hours"
    )
    publish_at: datetime | None
    rescheduled: bool
    schedule_notes: list[ScheduleMoveOut] = Field(description="why the post was moved, if it was")
    min_tier_rank: int | None
    public_at: datetime | None
    closes_at: datetime | None
    flash_sale_state: Literal["upcoming", "open", "ended"] | None = Field(
        default=None, description="for flash sales: where the sale window stands now"
    )
    published_at: datetime | None
    created_at: datetime


class PostList(BaseModel):
    items: list[PostOut]


class CampaignIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    posts: list[PostIn] = Field(min_length=1, max_length=50)


class CampaignOut(BaseModel):
    id: UUID
    name: str
    status: Literal["active", "cancelled"]
    posts: list[PostOut]
    created_at: datetime
