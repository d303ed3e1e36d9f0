"""SQLAlchemy metadata of the segments database (runtime tables included, so alembic sees them).

Every table leads with `merchant_id`: each query is scoped to one merchant and every b-tree serves that.
The per-customer lookups of customers' many rows go through hash indexes on the customer alone (0010).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Sequence,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from meadow_runtime.tables import runtime_metadata

metadata = runtime_metadata()

M = 64  # merchant id length, as in the envelope
ID = 128
SEGMENT_KEY = 200  # as membership's projection stores it: `tag:preference:` and a 128-character category fit


def Key(length: int) -> String:
    """An identifier column, compared bytewise (collation "C"): ids are opaque, and every key lookup,
    index insertion and join on them then costs a memcmp instead of a locale-aware strcoll."""
    return String(length, collation="C")


# Versions of customers' facts and generations of merchants' memberships: never one value twice (0009).
FACTS_VERSIONS = Sequence("facts_versions", metadata=metadata)

customers = Table(
    "customers",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("customer_id", Key(ID), primary_key=True),
    Column("gender", String(16)),
    Column("birth_year", Integer),
    Column("city", String(64)),
    Column("size", String(32)),
    Column("channel", String(64)),
    Column("tier_rank", Integer, nullable=False, server_default="0"),
    Column("lifecycle", String(16), nullable=False, server_default="prospect"),
    Column("r_score", Integer),
    Column("f_score", Integer),
    Column("m_score", Integer),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the version of the customer's facts, new whenever they change (0009; facts/cache.py)
    Column(
        "facts_version",
        BigInteger,
        FACTS_VERSIONS,
        nullable=False,
        server_default=FACTS_VERSIONS.next_value(),
    ),
)

orders = Table(
    "orders",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("order_id", Key(ID), primary_key=True),
    Column("customer_id", Key(ID), nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("channel", String(64)),
    Index("ix_orders_customer", "customer_id", postgresql_using="hash"),
    Index("ix_orders_paid_at", "merchant_id", "paid_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("order_id", Key(ID), primary_key=True),
    Column("line_id", Key(ID), primary_key=True),
    Column("customer_id", Key(ID), nullable=False),
    Column("product_id", Key(ID), nullable=False),
    Column("category", Key(ID), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Index("ix_order_lines_customer", "customer_id", postgresql_using="hash"),
)

refund_lines = Table(
    "refund_lines",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("refund_id", Key(ID), primary_key=True),
    Column("line_id", Key(ID), primary_key=True),
    Column("order_id", Key(ID), nullable=False),
    Column("customer_id", Key(ID), nullable=False),
    Column("product_id", Key(ID)),
    Column("category", Key(ID)),
    Column("amount_minor", BigInteger, nullable=False),
    Column("refunded_at", DateTime(timezone=True), nullable=False),
    Column("is_complaint", Boolean, nullable=False, server_default="false"),
    Index("ix_refund_lines_customer", "merchant_id", "customer_id"),
)

favorites = Table(
    "favorites",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("customer_id", Key(ID), primary_key=True),
    Column("product_id", Key(ID), primary_key=True),
    Column("category", Key(ID), nullable=False),
    Column("favorited_at", DateTime(timezone=True), nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("group_id", Key(64), primary_key=True),
    Column("customer_id", Key(ID), primary_key=True),
    # one row per stint: a rejoin after a leave is a new row, so past days keep their members (0007)
    Column("joined_at", DateTime(timezone=True), primary_key=True),
    Column("left_at", DateTime(timezone=True)),
    Index("ix_group_members_customer", "merchant_id", "customer_id"),
    Index(
        "ux_group_members_open",
        "merchant_id",
        "group_id",
        "customer_id",
        unique=True,
        postgresql_where=text("left_at IS NULL"),
    ),
)

activities = Table(
    "activities",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("activity_id", Key(64), primary_key=True),
    Column("customer_id", Key(ID), nullable=False),
    Column("group_id", Key(64)),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("ix_activities_customer", "merchant_id", "customer_id", "occurred_at"),
    Index("ix_activities_group", "merchant_id", "group_id", "occurred_at"),
)

referrals = Table(
    "referrals",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("invitee_id", Key(ID), primary_key=True),
    Column("inviter_id", Key(ID), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Index("ix_referrals_inviter", "merchant_id", "inviter_id"),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", String(M), nullable=False),
    Column("key", String(ID), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", String(2000), nullable=False, server_default=""),
    Column("rule", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("merchant_id", "key", name="uq_segments_merchant_id"),
)

segment_memberships = Table(
    "segment_memberships",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("segment_key", Key(SEGMENT_KEY), primary_key=True),
    Column("customer_id", Key(ID), primary_key=True),
    Column("entered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # a customer's memberships, loaded with their facts on every event about them
    Index("ix_segment_memberships_customer", "customer_id", postgresql_using="hash"),
)

# Bumped when a merchant's memberships are rewritten outside an evaluation: cached facts of before are stale.
membership_generations = Table(
    "membership_generations",
    metadata,
    Column("merchant_id", Key(M), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

ingested_events = Table(
    "ingested_events",
    metadata,
    Column("merchant_id", String(M), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("ingested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # sha-256 of the event's body: the same id again with another body is refused (0008)
    Column("body_digest", LargeBinary),
    # event ids are global (the outbox and every inbox key on them): finds one another merchant used
    Index("ix_ingested_events_event_id", "event_id"),
)
