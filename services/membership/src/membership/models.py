"""SQLAlchemy metadata of the membership database (runtime tables included, so alembic sees them).

Seats are counted on `subgroups.member_count` with a CHECK that it never exceeds `capacity`; an active
membership is unique per (merchant, group, customer) by a partial unique index.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from meadow_runtime.tables import runtime_metadata

metadata = runtime_metadata()

_now = func.now()

merchant_settings = Table(
    "merchant_settings",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("smart_invites_per_week", Integer, nullable=False, server_default=text("3")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("smart_invites_per_week >= 0", name="smart_invites_non_negative"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("purpose", String(200), nullable=True),
    Column("description", Text, nullable=True),
    Column("required_segments", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("required_mode", String(3), nullable=False, server_default=text("'any'")),
    Column("excluded_segments", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("min_tier_rank", Integer, nullable=False, server_default=text("0")),
    Column("welcome_perks", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("subgroup_capacity", Integer, nullable=False, server_default=text("500")),
    Column("max_subgroups", Integer, nullable=False, server_default=text("10")),
    Column("product_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("categories", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("set_filled_notified", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("archived_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("required_mode IN ('any', 'all')", name="required_mode"),
    CheckConstraint("min_tier_rank >= 0", name="min_tier_rank"),
    CheckConstraint("subgroup_capacity > 0", name="subgroup_capacity"),
    CheckConstraint("max_subgroups > 0", name="max_subgroups"),
    Index("ix_groups_merchant", "merchant_id", "created_at"),
)

subgroups = Table(
    "subgroups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("group_id", Uuid, ForeignKey("groups.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("member_count", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("number >= 1", name="number"),
    CheckConstraint("member_count >= 0 AND member_count <= capacity", name="seats"),
    UniqueConstraint("group_id", "number", name="uq_subgroups_group_number"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("group_id", Uuid, ForeignKey("groups.id"), nullable=False),
    Column("subgroup_id", Uuid, ForeignKey("subgroups.id"), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("route", String(16), nullable=False),
    Column("invite_id", Uuid, nullable=True),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("end_reason", String(16), nullable=True),
    Column("ended_by", String(128), nullable=True),
    Index(
        "uq_memberships_active",
        "merchant_id",
        "group_id",
        "customer_id",
        unique=True,
        postgresql_where=text("ended_at IS NULL"),
    ),
    Index(
        "ix_memberships_listing",
        "merchant_id",
        "group_id",
        "joined_at",
        "id",
        postgresql_where=text("ended_at IS NULL"),
    ),
    Index("ix_memberships_customer", "merchant_id", "customer_id", postgresql_where=text("ended_at IS NULL")),
)

customer_segments = Table(
    "customer_segments",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("segment_key", String(200), nullable=False),
    Column("segment_id", Uuid, nullable=False),
    Column("is_member", Boolean, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id", "segment_key"),
)

customer_tiers = Table(
    "customer_tiers",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("tier", String(64), nullable=True),
    Column("tier_rank", Integer, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id"),
)

invites = Table(
    "invites",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("group_id", Uuid, ForeignKey("groups.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("code", String(32), nullable=False),
    Column("inviter_customer_id", String(128), nullable=True),
    Column("invitee_customer_id", String(128), nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("use_count", Integer, nullable=False, server_default=text("0")),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    CheckConstraint("kind IN ('link', 'referral', 'smart')", name="kind"),
    CheckConstraint("max_uses IS NULL OR (max_uses > 0 AND use_count <= max_uses)", name="uses"),
    UniqueConstraint("merchant_id", "code", name="uq_invites_merchant_code"),
    Index(
        "uq_invites_referral_per_customer",
        "merchant_id",
        "group_id",
        "inviter_customer_id",
        unique=True,
        postgresql_where=text("kind = 'referral' AND revoked_at IS NULL"),
    ),
    Index(
        "ix_invites_smart_sent",
        "merchant_id",
        "invitee_customer_id",
        "created_at",
        postgresql_where=text("kind = 'smart'"),
    ),
    Index("ix_invites_group", "merchant_id", "group_id", "created_at"),
)

invite_acceptances = Table(
    "invite_acceptances",
    metadata,
    Column("invite_id", Uuid, ForeignKey("invites.id"), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("membership_id", Uuid, ForeignKey("memberships.id"), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("invite_id", "customer_id"),
)

blacklist = Table(
    "blacklist",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("blocked_by", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("blocked_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id"),
)

staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("merchant_id", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("display_name", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("role IN ('owner', 'operator', 'support')", name="role"),
    PrimaryKeyConstraint("merchant_id", "subject"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("merchant_id", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=True),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("at", DateTime(timezone=True), nullable=False, server_default=_now),
    Index("ix_audit_log_merchant", "merchant_id", "id"),
)
