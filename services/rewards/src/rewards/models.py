"""SQLAlchemy metadata of the rewards database (runtime tables included, so alembic sees them).

Locking discipline: every change to a customer's lots, balance or debt happens while holding that
customer's `balances` row lock, so one customer's movements are serialised and different customers'
never contend. There is no per-merchant row: merchant-side accounts are sums of the transfers' postings.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
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

from .domain.ledger import Account

metadata = runtime_metadata()

# Identifier columns compare bytewise (collation "C", migration 0006): ids are opaque, and every key
# probe, index insertion and sort of a batch's keys is then a memcmp instead of the locale's strcoll.
MERCHANT = String(64, collation="C")
CUSTOMER = String(128, collation="C")
REFERENCE = String(256, collation="C")


def _now() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


merchant_settings = Table(
    "merchant_settings",
    metadata,
    Column("merchant_id", MERCHANT, primary_key=True),
    Column("points_validity_days", Integer, nullable=False, server_default=text("365")),
    Column("timezone", String(64), nullable=False, server_default=text("'Asia/Shanghai'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("points_validity_days > 0", name="validity_positive"),
)

earn_rules = Table(
    "earn_rules",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", MERCHANT, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("points", Integer, nullable=True, comment="fixed points (every kind but purchase)"),
    Column("points_per_unit", Numeric(10, 3), nullable=True, comment="purchase: points per currency unit"),
    Column("include_categories", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("exclude_categories", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("daily_limit", Integer, nullable=True, comment="buyer_show/check_in: earns per customer per day"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tiers = Table(
    "tiers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", MERCHANT, nullable=False),
    Column("name", String(100), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("threshold_points", BigInteger, nullable=False),
    Column("multiplier", Numeric(6, 3), nullable=False, server_default=text("1")),
    Column("perks", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    _now(),
    UniqueConstraint("merchant_id", "rank", name="uq_tiers_merchant_rank"),
    UniqueConstraint("merchant_id", "name", name="uq_tiers_merchant_name"),
    CheckConstraint("rank >= 1", name="rank_positive"),
)

balances = Table(
    "balances",
    metadata,
    Column("merchant_id", MERCHANT, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("points", BigInteger, nullable=False, server_default=text("0")),
    Column("debt", BigInteger, nullable=False, server_default=text("0")),
    Column("tier_rank", Integer, nullable=False, server_default=text("0")),
    Column("tier_name", String(100), nullable=True),
    Column("first_paid_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("merchant_id", "customer_id"),
    CheckConstraint("points >= 0", name="points_not_negative"),
    CheckConstraint("debt >= 0", name="debt_not_negative"),
    # Every batch rewrites its customers' rows twice (lock, then the new figures): free space on the
    # page lets those be HOT updates that touch no index.
    postgresql_with={"fillfactor": 70},
)

# A transfer's postings: its amount on each account, one column per account in `Account` order.
POSTED_COLUMNS = tuple(f"posted_{account}" for account in Account)

transfers = Table(
    "transfers",
    metadata,
    Column("id", Uuid, primary_key=True, comment="deterministic: uuid5 of the cause"),
    Column("seq", BigInteger, Identity(always=True), nullable=False),
    Column("merchant_id", MERCHANT, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("points", BigInteger, nullable=False),
    Column("cause_event_id", Uuid, nullable=True),
    Column("cause_ref", String(256), nullable=True),
    Column("actor", String(128), nullable=True),
    Column("note", Text, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column(
        "earned_at",
        DateTime(timezone=True),
        nullable=True,
        comment="reversals: when the points they take back were earned; the tier window counts them then",
    ),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The postings: what the transfer moves on each account, 0 where it moves nothing. One row per
    # movement rather than one per leg (migration 0009: the legs' rows and their index entries were a
    # tenth of the ingest's database time); the `postings` view lists them one per row.
    *(Column(name, BigInteger, nullable=False, server_default=text("0")) for name in POSTED_COLUMNS),
    Index("ix_transfers_customer", "merchant_id", "customer_id", "seq"),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint(" + ".join(POSTED_COLUMNS) + " = 0", name="postings_balance"),
)

lots = Table(
    "lots",
    metadata,
    Column("id", Uuid, primary_key=True, comment="the earning transfer's id"),
    Column("merchant_id", MERCHANT, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("earned_at", DateTime(timezone=True), nullable=False),
    Index("ix_lots_customer_live", "merchant_id", "customer_id", postgresql_where=text("remaining > 0")),
    Index("ix_lots_expiry_live", "expires_at", postgresql_where=text("remaining > 0")),
    CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
)

orders = Table(
    "orders",
    metadata,
    Column("merchant_id", MERCHANT, nullable=False),
    Column("order_id", REFERENCE, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("lines", JSONB, nullable=False, comment="line_id -> [paid minor units, points earned]"),
    Column("earn_transfer_id", Uuid, nullable=True),
    PrimaryKeyConstraint("merchant_id", "order_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("merchant_id", MERCHANT, nullable=False),
    Column("refund_id", REFERENCE, nullable=False),
    Column("order_id", REFERENCE, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("lines", JSONB, nullable=False, comment="line_id -> refunded minor units"),
    Column("reversed", JSONB, nullable=True, comment="line_id -> points taken back, once applied"),
    Column("cause_event_id", Uuid, nullable=False),
    Column("refunded_at", DateTime(timezone=True), nullable=False),
    Column("transfer_id", Uuid, nullable=True),
    PrimaryKeyConstraint("merchant_id", "refund_id"),
    Index("ix_refunds_order", "merchant_id", "order_id"),
)

referrals = Table(
    "referrals",
    metadata,
    Column("merchant_id", MERCHANT, nullable=False),
    Column("invitee_customer_id", CUSTOMER, nullable=False),
    Column("inviter_customer_id", CUSTOMER, nullable=False),
    Column("invite_id", Uuid, nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("cause_event_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    PrimaryKeyConstraint("merchant_id", "invitee_customer_id"),
)

daily_earns = Table(
    "daily_earns",
    metadata,
    Column("merchant_id", MERCHANT, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("day", Date, nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("merchant_id", "customer_id", "reason", "day"),
)

catalog_rewards = Table(
    "catalog_rewards",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", MERCHANT, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=text("''")),
    Column("points_price", Integer, nullable=False),
    Column("stock", Integer, nullable=True, comment="NULL: unlimited"),
    Column("per_customer_limit", Integer, nullable=True),
    Column("min_tier_rank", Integer, nullable=False, server_default=text("0")),
    Column("valid_from", DateTime(timezone=True), nullable=True),
    Column("valid_until", DateTime(timezone=True), nullable=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("points_price > 0", name="price_positive"),
    CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", MERCHANT, nullable=False),
    Column("customer_id", CUSTOMER, nullable=False),
    Column("reward_id", Uuid, ForeignKey("catalog_rewards.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("allocations", JSONB, nullable=False, comment="lot id -> points taken"),
    Column("transfer_id", Uuid, nullable=False),
    _now(),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("cancelled_by", String(128), nullable=True),
    Index("ix_redemptions_customer", "merchant_id", "customer_id", "reward_id"),
)
