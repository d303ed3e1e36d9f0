"""Customer facts, segment definitions, memberships and ingested event ids.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE customers (
    merchant_id varchar(64) NOT NULL, customer_id varchar(128) NOT NULL,
    gender varchar(16), birth_year integer, city varchar(64), size varchar(32), channel varchar(64),
    tier_rank integer NOT NULL DEFAULT 0, lifecycle varchar(16) NOT NULL DEFAULT 'prospect',
    r_score integer, f_score integer, m_score integer,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_customers PRIMARY KEY (merchant_id, customer_id)
);
CREATE TABLE orders (
    merchant_id varchar(64) NOT NULL, order_id varchar(128) NOT NULL, customer_id varchar(128) NOT NULL,
    paid_at timestamptz NOT NULL, total_minor bigint NOT NULL, channel varchar(64),
    CONSTRAINT pk_orders PRIMARY KEY (merchant_id, order_id)
);
CREATE INDEX ix_orders_customer ON orders (merchant_id, customer_id);
CREATE INDEX ix_orders_paid_at ON orders (merchant_id, paid_at);
CREATE TABLE order_lines (
    merchant_id varchar(64) NOT NULL, order_id varchar(128) NOT NULL, line_id varchar(128) NOT NULL,
    customer_id varchar(128) NOT NULL, product_id varchar(128) NOT NULL, category varchar(128) NOT NULL,
    amount_minor bigint NOT NULL, paid_at timestamptz NOT NULL,
    CONSTRAINT pk_order_lines PRIMARY KEY (merchant_id, order_id, line_id)
);
CREATE INDEX ix_order_lines_customer ON order_lines (merchant_id, customer_id);
CREATE TABLE refund_lines (
    merchant_id varchar(64) NOT NULL, refund_id varchar(128) NOT NULL, line_id varchar(128) NOT NULL,
    order_id varchar(128) NOT NULL, customer_id varchar(128) NOT NULL,
    product_id varchar(128), category varchar(128), amount_minor bigint NOT NULL,
    refunded_at timestamptz NOT NULL, is_complaint boolean NOT NULL DEFAULT false,
    CONSTRAINT pk_refund_lines PRIMARY KEY (merchant_id, refund_id, line_id)
);
CREATE INDEX ix_refund_lines_customer ON refund_lines (merchant_id, customer_id);
CREATE TABLE favorites (
    merchant_id varchar(64) NOT NULL, customer_id varchar(128) NOT NULL, product_id varchar(128) NOT NULL,
    category varchar(128) NOT NULL, favorited_at timestamptz NOT NULL,
    CONSTRAINT pk_favorites PRIMARY KEY (merchant_id, customer_id, product_id)
);
CREATE TABLE group_members (
    merchant_id varchar(64) NOT NULL, group_id varchar(64) NOT NULL, customer_id varchar(128) NOT NULL,
    joined_at timestamptz NOT NULL, left_at timestamptz,
    CONSTRAINT pk_group_members PRIMARY KEY (merchant_id, group_id, customer_id)
);
CREATE INDEX ix_group_members_customer ON group_members (merchant_id, customer_id);
CREATE TABLE activities (
    merchant_id varchar(64) NOT NULL, activity_id varchar(64) NOT NULL, customer_id varchar(128) NOT NULL,
    group_id varchar(64), kind varchar(32) NOT NULL, occurred_at timestamptz NOT NULL,
    CONSTRAINT pk_activities PRIMARY KEY (merchant_id, activity_id)
);
CREATE INDEX ix_activities_customer ON activities (merchant_id, customer_id, occurred_at);
CREATE INDEX ix_activities_group ON activities (merchant_id, group_id, occurred_at);
CREATE TABLE referrals (
    merchant_id varchar(64) NOT NULL, invitee_id varchar(128) NOT NULL, inviter_id varchar(128) NOT NULL,
    accepted_at timestamptz NOT NULL,
    CONSTRAINT pk_referrals PRIMARY KEY (merchant_id, invitee_id)
);
CREATE INDEX ix_referrals_inviter ON referrals (merchant_id, inviter_id);
CREATE TABLE segments (
    id uuid NOT NULL, merchant_id varchar(64) NOT NULL, key varchar(128) NOT NULL, name varchar(200) NOT NULL,
    description varchar(2000) NOT NULL DEFAULT '', rule jsonb NOT NULL, version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_segments PRIMARY KEY (id),
    CONSTRAINT uq_segments_merchant_id UNIQUE (merchant_id, key)
);
CREATE TABLE segment_memberships (
    merchant_id varchar(64) NOT NULL, segment_key varchar(128) NOT NULL, customer_id varchar(128) NOT NULL,
    entered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_segment_memberships PRIMARY KEY (merchant_id, segment_key, customer_id)
);
CREATE INDEX ix_segment_memberships_customer ON segment_memberships (merchant_id, customer_id);
CREATE TABLE ingested_events (
    merchant_id varchar(64) NOT NULL, event_id uuid NOT NULL, ingested_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ingested_events PRIMARY KEY (merchant_id, event_id)
);
"""

DROPPED = (
    "ingested_events", "segment_memberships", "segments", "referrals", "activities", "group_members",
    "favorites", "refund_lines", "order_lines", "orders", "customers",
)


def upgrade() -> None:
    op.execute(TABLES)


def downgrade() -> None:
    for table in DROPPED:
        op.execute(f"DROP TABLE {table}")
