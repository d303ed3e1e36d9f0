"""Every event Meadow's topics carry, as frozen pydantic models.

Names are past tense. `event_type` is `<topic>.<name>.v<N>`: adding an optional field keeps the version;
any other change is a new model published side by side. Money is in minor units (fen/cents) as integers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from .envelope import Event, Part
from .topics import Topic

CustomerId = str
MinorUnits = int


def _t(topic: Topic, name: str, version: int = 1) -> str:
    return f"{topic.value}.{name}.v{version}"


# ---------------------------------------------------------------- commerce.orders (order systems)


class OrderLine(Part):
    line_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    quantity: int = Field(ge=1)
    amount_minor: MinorUnits = Field(ge=0, description="what the customer paid for this line")


class OrderPaid(Event):
    event_type = _t(Topic.COMMERCE_ORDERS, "order_paid")
    topic = Topic.COMMERCE_ORDERS.value

    order_id: str = Field(min_length=1)
    customer_id: CustomerId = Field(min_length=1)
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    lines: tuple[OrderLine, ...] = Field(min_length=1)
    paid_at: datetime
    channel: str | None = None

    @property
    def total_minor(self) -> MinorUnits:
        return sum(line.amount_minor for line in self.lines)


class RefundedLine(Part):
    line_id: str = Field(min_length=1)
    amount_minor: MinorUnits = Field(ge=0)


class OrderRefunded(Event):
    event_type = _t(Topic.COMMERCE_ORDERS, "order_refunded")
    topic = Topic.COMMERCE_ORDERS.value

    order_id: str = Field(min_length=1)
    refund_id: str = Field(min_length=1)
    customer_id: CustomerId = Field(min_length=1)
    lines: tuple[RefundedLine, ...] = Field(min_length=1)
    refunded_at: datetime
    reason: str | None = None
    is_complaint: bool = False


# ---------------------------------------------------------------- commerce.customers (storefront)


class CustomerProfileUpdated(Event):
    event_type = _t(Topic.COMMERCE_CUSTOMERS, "customer_profile_updated")
    topic = Topic.COMMERCE_CUSTOMERS.value

    customer_id: CustomerId = Field(min_length=1)
    gender: Literal["female", "male", "unknown"] | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    city: str | None = None
    size: str | None = None
    channel: str | None = None


class ProductFavorited(Event):
    event_type = _t(Topic.COMMERCE_CUSTOMERS, "product_favorited")
    topic = Topic.COMMERCE_CUSTOMERS.value

    customer_id: CustomerId = Field(min_length=1)
    product_id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    favorited_at: datetime


class ProductViewed(Event):
    event_type = _t(Topic.COMMERCE_CUSTOMERS, "product_viewed")
    topic = Topic.COMMERCE_CUSTOMERS.value

    customer_id: CustomerId = Field(min_length=1)
    product_id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    viewed_at: datetime


# ---------------------------------------------------------------- membership

JoinRoute = Literal["direct", "invite", "referral", "product_page", "smart_invite"]


class MemberJoined(Event):
    event_type = _t(Topic.MEMBERSHIP, "member_joined")
    topic = Topic.MEMBERSHIP.value

    group_id: UUID
    subgroup_id: UUID
    subgroup_number: int = Field(ge=1)
    customer_id: CustomerId
    route: JoinRoute = "direct"
    invite_id: UUID | None = None
    joined_at: datetime


class MemberLeft(Event):
    event_type = _t(Topic.MEMBERSHIP, "member_left")
    topic = Topic.MEMBERSHIP.value

    group_id: UUID
    subgroup_id: UUID
    customer_id: CustomerId
    left_at: datetime


class MemberRemoved(Event):
    event_type = _t(Topic.MEMBERSHIP, "member_removed")
    topic = Topic.MEMBERSHIP.value

    group_id: UUID
    subgroup_id: UUID
    customer_id: CustomerId
    removed_by: str
    reason: str | None = None
    removed_at: datetime


class MemberBlocked(Event):
    event_type = _t(Topic.MEMBERSHIP, "member_blocked")
    topic = Topic.MEMBERSHIP.value

    customer_id: CustomerId
    blocked_by: str
    reason: str | None = None
    removed_from_group_ids: tuple[UUID, ...] = ()
    blocked_at: datetime


class GroupSetFilled(Event):
    """A join was refused because every sub-group of the group is full: the owner should open room."""

    event_type = _t(Topic.MEMBERSHIP, "group_set_filled")
    topic = Topic.MEMBERSHIP.value

    group_id: UUID
    refused_customer_id: CustomerId
    capacity: int
    filled_at: datetime


class InviteIssued(Event):
    event_type = _t(Topic.MEMBERSHIP, "invite_issued")
    topic = Topic.MEMBERSHIP.value

    invite_id: UUID
    group_id: UUID
    kind: Literal["link", "referral", "smart"]
    code: str
    inviter_customer_id: CustomerId | None = None
    invitee_customer_id: CustomerId | None = None
    expires_at: datetime | None = None


class InviteAccepted(Event):
    event_type = _t(Topic.MEMBERSHIP, "invite_accepted")
    topic = Topic.MEMBERSHIP.value

    invite_id: UUID
    group_id: UUID
    inviter_customer_id: CustomerId | None
    invitee_customer_id: CustomerId
    accepted_at: datetime


# ---------------------------------------------------------------- content

PostKind = Literal[
    "text", "image", "video", "product_card", "poll", "early_access", "flash_sale", "check_in_call", "lottery"
]
CommentKind = Literal["comment", "check_in", "buyer_show", "question"]


class PostPublished(Event):
    event_type = _t(Topic.CONTENT, "post_published")
    topic = Topic.CONTENT.value

    post_id: UUID
    kind: PostKind
    title: str
    group_ids: tuple[UUID, ...] = ()
    segment_ids: tuple[UUID, ...] = ()
    campaign_id: UUID | None = None
    min_tier_rank: int | None = None
    published_at: datetime


class CommentCreated(Event):
    event_type = _t(Topic.CONTENT, "comment_created")
    topic = Topic.CONTENT.value

    comment_id: UUID
    post_id: UUID
    group_id: UUID | None = None
    customer_id: CustomerId
    kind: CommentKind
    by_staff: bool = False
    order_id: str | None = None
    image_urls: tuple[str, ...] = ()
    created_at: datetime


class VoteCast(Event):
    event_type = _t(Topic.CONTENT, "vote_cast")
    topic = Topic.CONTENT.value

    poll_id: UUID
    option_id: str
    customer_id: CustomerId
    cast_at: datetime


class PostLiked(Event):
    """A member liked a post (once per member and post); `group_id` is the post's group they are in."""

    event_type = _t(Topic.CONTENT, "post_liked")
    topic = Topic.CONTENT.value

    post_id: UUID
    group_id: UUID | None = None
    customer_id: CustomerId
    liked_at: datetime


class LotteryDrawn(Event):
    event_type = _t(Topic.CONTENT, "lottery_drawn")
    topic = Topic.CONTENT.value

    lottery_id: UUID
    post_id: UUID
    group_id: UUID | None = None
    draw_date: date
    winners: tuple[CustomerId, ...]
    prize_points: int = Field(ge=0)
    seed_sha256: str
    seed: str
    drawn_at: datetime


# ---------------------------------------------------------------- rewards

EarnReason = Literal["purchase", "buyer_show", "check_in", "join_group", "referral", "lottery", "adjustment"]


class PointsEarned(Event):
    event_type = _t(Topic.REWARDS, "points_earned")
    topic = Topic.REWARDS.value

    transfer_id: UUID
    customer_id: CustomerId
    points: int = Field(gt=0)
    reason: EarnReason
    cause_event_id: UUID | None = None
    expires_at: datetime | None = None
    debt_repaid: int = Field(default=0, ge=0)
    balance_after: int = Field(ge=0)


class PointsSpent(Event):
    event_type = _t(Topic.REWARDS, "points_spent")
    topic = Topic.REWARDS.value

    transfer_id: UUID
    customer_id: CustomerId
    points: int = Field(gt=0)
    redemption_id: UUID | None = None
    balance_after: int = Field(ge=0)


class PointsReversed(Event):
    event_type = _t(Topic.REWARDS, "points_reversed")
    topic = Topic.REWARDS.value

    transfer_id: UUID
    customer_id: CustomerId
    points: int = Field(gt=0)
    order_id: str
    refund_id: str
    debt_added: int = Field(default=0, ge=0)
    balance_after: int = Field(ge=0)
    debt_after: int = Field(default=0, ge=0)


class PointsExpired(Event):
    event_type = _t(Topic.REWARDS, "points_expired")
    topic = Topic.REWARDS.value

    transfer_id: UUID
    customer_id: CustomerId
    points: int = Field(gt=0)
    balance_after: int = Field(ge=0)


class TierChanged(Event):
    event_type = _t(Topic.REWARDS, "tier_changed")
    topic = Topic.REWARDS.value

    customer_id: CustomerId
    old_tier: str | None
    new_tier: str | None
    new_rank: int = Field(ge=0, description="0 = no tier; higher is better")
    direction: Literal["up", "down"]
    changed_at: datetime


class RedemptionCompleted(Event):
    event_type = _t(Topic.REWARDS, "redemption_completed")
    topic = Topic.REWARDS.value

    redemption_id: UUID
    customer_id: CustomerId
    reward_id: UUID
    quantity: int = Field(ge=1)
    points: int = Field(gt=0)


class RedemptionCancelled(Event):
    event_type = _t(Topic.REWARDS, "redemption_cancelled")
    topic = Topic.REWARDS.value

    redemption_id: UUID
    customer_id: CustomerId
    reward_id: UUID
    points_refunded: int = Field(ge=0)


# ---------------------------------------------------------------- segments


class SegmentEntered(Event):
    event_type = _t(Topic.SEGMENTS, "segment_entered")
    topic = Topic.SEGMENTS.value

    segment_id: UUID
    segment_key: str = Field(description="stable name, e.g. 'lifecycle:new' or a merchant segment's slug")
    customer_id: CustomerId
    entered_at: datetime


class SegmentExited(Event):
    event_type = _t(Topic.SEGMENTS, "segment_exited")
    topic = Topic.SEGMENTS.value

    segment_id: UUID
    segment_key: str
    customer_id: CustomerId
    exited_at: datetime


Lifecycle = Literal["prospect", "new", "repurchase", "non_repurchase", "problem"]


class CustomerLifecycleChanged(Event):
    event_type = _t(Topic.SEGMENTS, "customer_lifecycle_changed")
    topic = Topic.SEGMENTS.value

    customer_id: CustomerId
    old_stage: Lifecycle | None
    new_stage: Lifecycle
    changed_at: datetime


EVENT_MODELS: tuple[type[Event], ...] = (
    OrderPaid, OrderRefunded,
    CustomerProfileUpdated, ProductFavorited, ProductViewed,
    MemberJoined, MemberLeft, MemberRemoved, MemberBlocked, GroupSetFilled, InviteIssued, InviteAccepted,
    PostPublished, CommentCreated, VoteCast, PostLiked, LotteryDrawn,
    PointsEarned, PointsSpent, PointsReversed, PointsExpired, TierChanged,
    RedemptionCompleted, RedemptionCancelled,
    SegmentEntered, SegmentExited, CustomerLifecycleChanged,
)  # fmt: skip
