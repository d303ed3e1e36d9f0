"""SQLAlchemy Core tables of the content database (runtime tables included, so alembic sees them).

Projections of other services' facts (groups and their members, segment members, tiers) live beside the
content the merchant writes; nothing here is read by another service.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from meadow_runtime.tables import runtime_metadata

metadata = runtime_metadata()


def _created_at() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


merchant_settings = Table(
    "merchant_settings",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("timezone", String(64), nullable=False, server_default="Asia/Shanghai"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

groups = Table(
    "groups",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("group_id", Uuid, nullable=False),
    Column("max_posts_per_day", Integer, nullable=True, server_default="3"),
    Column("quiet_start", Time, nullable=True),
    Column("quiet_end", Time, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("merchant_id", "group_id"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("group_id", Uuid, nullable=False),
    Column("customer_id", String(128), nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id", "group_id"),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("segment_id", Uuid, nullable=False),
    Column("customer_id", String(128), nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id", "segment_id"),
)

customer_tiers = Table(
    "customer_tiers",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("tier", String(64), nullable=True),
    Column("rank", Integer, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    _created_at(),
)

posts = Table(
    "posts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False, server_default=""),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment="kind-specific"),
    Column("group_ids", ARRAY(Uuid), nullable=False, server_default="{}"),
    Column("segment_ids", ARRAY(Uuid), nullable=False, server_default="{}"),
    Column("campaign_id", Uuid, nullable=True),
    Column("series_id", Uuid, nullable=True, comment="the first post of a cron series"),
    Column("status", String(16), nullable=False, comment="draft, scheduled, published, cancelled"),
    Column("schedule_kind", String(16), nullable=True, comment="now, at, cron, best_time"),
    Column("cron", String(120), nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=True, comment="before caps and quiet hours"),
    Column("publish_at", DateTime(timezone=True), nullable=True),
    Column("schedule_notes", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("min_tier_rank", Integer, nullable=True),
    Column("public_at", DateTime(timezone=True), nullable=True),
    Column("closes_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(128), nullable=False),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index("ix_posts_due", "publish_at", postgresql_where=text("status = 'scheduled'")),
    Index("ix_posts_merchant_publish_at", "merchant_id", "publish_at"),
    Index("ix_posts_campaign", "campaign_id", postgresql_where=text("campaign_id IS NOT NULL")),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("post_id", Uuid, nullable=False),
    Column("group_id", Uuid, nullable=True),
    Column("customer_id", String(128), nullable=False, comment="the member, or the staff account"),
    Column("by_staff", Boolean, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("image_urls", ARRAY(Text), nullable=False, server_default="{}"),
    Column("order_id", String(128), nullable=True),
    Column("reply_to", Uuid, nullable=True),
    Column("thoughtful", Boolean, nullable=False, server_default="false"),
    Column("hidden", Boolean, nullable=False, server_default="false"),
    _created_at(),
    Index("ix_comments_post", "merchant_id", "post_id", "created_at"),
    Index("ix_comments_group_activity", "merchant_id", "group_id", "created_at"),
)

votes = Table(
    "votes",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("post_id", Uuid, nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("option_id", String(64), nullable=False),
    Column("cast_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("post_id", "customer_id", name="pk_votes"),
)

likes = Table(
    "likes",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("post_id", Uuid, nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("group_id", Uuid, nullable=True),  # the post's group the member is in, if any
    Column("liked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("merchant_id", "post_id", "customer_id", name="pk_likes"),
)

lotteries = Table(
    "lotteries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("post_id", Uuid, nullable=False, comment="the check-in call whose check-ins enter"),
    Column("group_id", Uuid, nullable=True),
    Column("draw_date", Date, nullable=False, comment="local day whose check-ins enter"),
    Column("draw_at", DateTime(timezone=True), nullable=False),
    Column("winners_count", Integer, nullable=False),
    Column("prize_points", Integer, nullable=False),
    Column("thoughtful_weight", Integer, nullable=False, server_default="1"),
    Column("seed", String(128), nullable=False, comment="secret until drawn"),
    Column("seed_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False, server_default="scheduled"),
    Column("entrants", JSONB, nullable=True),
    Column("winners", JSONB, nullable=True),
    Column("drawn_at", DateTime(timezone=True), nullable=True),
    Column("announcement_post_id", Uuid, nullable=True),
    _created_at(),
    UniqueConstraint("post_id", "draw_date", name="uq_lotteries_post_day"),
    Index("ix_lotteries_due", "draw_at", postgresql_where=text("status = 'scheduled'")),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    _created_at(),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("endpoint_id", Uuid, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    _created_at(),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_webhook_deliveries_merchant", "merchant_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("delivery_id", Uuid, nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)

CONTENT_TABLES = (
    merchant_settings,
    groups,
    group_members,
    segment_members,
    customer_tiers,
    campaigns,
    posts,
    comments,
    votes,
    likes,
    lotteries,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
)
