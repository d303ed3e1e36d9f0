"""Groups, sub-groups, memberships, projections, invites, blacklist, staff and audit log.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE merchant_settings (
    merchant_id varchar(64) PRIMARY KEY,
    smart_invites_per_week integer NOT NULL DEFAULT 3,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_merchant_settings_smart_invites_non_negative CHECK (smart_invites_per_week >= 0)
);

CREATE TABLE groups (
    id uuid PRIMARY KEY,
    merchant_id varchar(64) NOT NULL,
    name varchar(200) NOT NULL,
    purpose varchar(200),
    description text,
    required_segments text[] NOT NULL DEFAULT '{}',
    required_mode varchar(3) NOT NULL DEFAULT 'any',
    excluded_segments text[] NOT NULL DEFAULT '{}',
    min_tier_rank integer NOT NULL DEFAULT 0,
    welcome_perks jsonb NOT NULL DEFAULT '[]'::jsonb,
    subgroup_capacity integer NOT NULL DEFAULT 500,
    max_subgroups integer NOT NULL DEFAULT 10,
    product_ids text[] NOT NULL DEFAULT '{}',
    categories text[] NOT NULL DEFAULT '{}',
    set_filled_notified boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    CONSTRAINT ck_groups_required_mode CHECK (required_mode IN ('any', 'all')),
    CONSTRAINT ck_groups_min_tier_rank CHECK (min_tier_rank >= 0),
    CONSTRAINT ck_groups_subgroup_capacity CHECK (subgroup_capacity > 0),
    CONSTRAINT ck_groups_max_subgroups CHECK (max_subgroups > 0)
);
CREATE INDEX ix_groups_merchant ON groups (merchant_id, created_at);

CREATE TABLE subgroups (
    id uuid PRIMARY KEY,
    merchant_id varchar(64) NOT NULL,
    group_id uuid NOT NULL REFERENCES groups (id),
    number integer NOT NULL,
    capacity integer NOT NULL,
    member_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_subgroups_number CHECK (number >= 1),
    CONSTRAINT ck_subgroups_seats CHECK (member_count >= 0 AND member_count <= capacity),
    CONSTRAINT uq_subgroups_group_number UNIQUE (group_id, number)
);

CREATE TABLE memberships (
    id uuid PRIMARY KEY,
    merchant_id varchar(64) NOT NULL,
    group_id uuid NOT NULL REFERENCES groups (id),
    subgroup_id uuid NOT NULL REFERENCES subgroups (id),
    customer_id varchar(128) NOT NULL,
    route varchar(16) NOT NULL,
    invite_id uuid,
    joined_at timestamptz NOT NULL,
    ended_at timestamptz,
    end_reason varchar(16),
    ended_by varchar(128)
);
CREATE UNIQUE INDEX uq_memberships_active ON memberships (merchant_id, group_id, customer_id)
    WHERE ended_at IS NULL;
CREATE INDEX ix_memberships_listing ON memberships (merchant_id, group_id, joined_at, id)
    WHERE ended_at IS NULL;
CREATE INDEX ix_memberships_customer ON memberships (merchant_id, customer_id) WHERE ended_at IS NULL;

CREATE TABLE customer_segments (
    merchant_id varchar(64) NOT NULL,
    customer_id varchar(128) NOT NULL,
    segment_key varchar(200) NOT NULL,
    segment_id uuid NOT NULL,
    is_member boolean NOT NULL,
    as_of timestamptz NOT NULL,
    CONSTRAINT pk_customer_segments PRIMARY KEY (merchant_id, customer_id, segment_key)
);

CREATE TABLE customer_tiers (
    merchant_id varchar(64) NOT NULL,
    customer_id varchar(128) NOT NULL,
    tier varchar(64),
    tier_rank integer NOT NULL,
    as_of timestamptz NOT NULL,
    CONSTRAINT pk_customer_tiers PRIMARY KEY (merchant_id, customer_id)
);

CREATE TABLE invites (
    id uuid PRIMARY KEY,
    merchant_id varchar(64) NOT NULL,
    group_id uuid NOT NULL REFERENCES groups (id),
    kind varchar(8) NOT NULL,
    code varchar(32) NOT NULL,
    inviter_customer_id varchar(128),
    invitee_customer_id varchar(128),
    created_by varchar(128) NOT NULL,
    expires_at timestamptz,
    max_uses integer,
    use_count integer NOT NULL DEFAULT 0,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_invites_kind CHECK (kind IN ('link', 'referral', 'smart')),
    CONSTRAINT ck_invites_uses CHECK (max_uses IS NULL OR (max_uses > 0 AND use_count <= max_uses)),
    CONSTRAINT uq_invites_merchant_code UNIQUE (merchant_id, code)
);
CREATE UNIQUE INDEX uq_invites_referral_per_customer ON invites (merchant_id, group_id, inviter_customer_id)
    WHERE kind = 'referral' AND revoked_at IS NULL;
CREATE INDEX ix_invites_smart_sent ON invites (merchant_id, invitee_customer_id, created_at)
    WHERE kind = 'smart';
CREATE INDEX ix_invites_group ON invites (merchant_id, group_id, created_at);

CREATE TABLE invite_acceptances (
    invite_id uuid NOT NULL REFERENCES invites (id),
    customer_id varchar(128) NOT NULL,
    membership_id uuid NOT NULL REFERENCES memberships (id),
    accepted_at timestamptz NOT NULL,
    CONSTRAINT pk_invite_acceptances PRIMARY KEY (invite_id, customer_id)
);

CREATE TABLE blacklist (
    merchant_id varchar(64) NOT NULL,
    customer_id varchar(128) NOT NULL,
    blocked_by varchar(128) NOT NULL,
    reason text,
    blocked_at timestamptz NOT NULL,
    CONSTRAINT pk_blacklist PRIMARY KEY (merchant_id, customer_id)
);

CREATE TABLE staff_accounts (
    merchant_id varchar(64) NOT NULL,
    subject varchar(128) NOT NULL,
    role varchar(16) NOT NULL,
    display_name varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    CONSTRAINT ck_staff_accounts_role CHECK (role IN ('owner', 'operator', 'support')),
    CONSTRAINT pk_staff_accounts PRIMARY KEY (merchant_id, subject)
);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    merchant_id varchar(64) NOT NULL,
    actor varchar(128) NOT NULL,
    actor_role varchar(16) NOT NULL,
    action varchar(64) NOT NULL,
    target varchar(256),
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_audit_log_merchant ON audit_log (merchant_id, id);
"""

DOWNGRADE = """
DROP TABLE audit_log;
DROP TABLE staff_accounts;
DROP TABLE blacklist;
DROP TABLE invite_acceptances;
DROP TABLE invites;
DROP TABLE customer_tiers;
DROP TABLE customer_segments;
DROP TABLE memberships;
DROP TABLE subgroups;
DROP TABLE groups;
DROP TABLE merchant_settings;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
