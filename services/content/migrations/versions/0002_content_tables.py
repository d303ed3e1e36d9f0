"""Content tables: posts, campaigns, comments, votes, lotteries, webhooks, and the projections content keeps.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = (
    "webhook_attempts", "webhook_deliveries", "webhook_endpoints", "lotteries", "votes", "comments", "posts",
    "campaigns", "customer_tiers", "segment_members", "group_members", "groups", "merchant_settings",
)


def upgrade() -> None:
    op.create_table('merchant_settings',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), server_default='Asia/Shanghai', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_merchant_settings'))
    )
    op.create_table('groups',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('max_posts_per_day', sa.Integer(), server_default='3', nullable=True),
    sa.Column('quiet_start', sa.Time(), nullable=True),
    sa.Column('quiet_end', sa.Time(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('merchant_id', 'group_id', name=op.f('pk_groups'))
    )
    op.create_table('group_members',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('merchant_id', 'customer_id', 'group_id', name=op.f('pk_group_members'))
    )
    op.create_table('segment_members',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('segment_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('merchant_id', 'customer_id', 'segment_id', name=op.f('pk_segment_members'))
    )
    op.create_table('customer_tiers',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.Column('tier', sa.String(length=64), nullable=True),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('merchant_id', 'customer_id', name=op.f('pk_customer_tiers'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_table('posts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), server_default='', nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False, comment='kind-specific'),
    sa.Column('group_ids', postgresql.ARRAY(sa.Uuid()), server_default='{}', nullable=False),
    sa.Column('segment_ids', postgresql.ARRAY(sa.Uuid()), server_default='{}', nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=True),
    sa.Column('series_id', sa.Uuid(), nullable=True, comment='the first post of a cron series'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='draft, scheduled, published, cancelled'),
    sa.Column('schedule_kind', sa.String(length=16), nullable=True, comment='now, at, cron, best_time'),
    sa.Column('cron', sa.String(length=120), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True, comment='before caps and quiet hours'),
    sa.Column('publish_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('schedule_notes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('min_tier_rank', sa.Integer(), nullable=True),
    sa.Column('public_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts'))
    )
    op.create_table('comments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.String(length=128), nullable=False, comment='the member, or the staff account'),
    sa.Column('by_staff', sa.Boolean(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('image_urls', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('order_id', sa.String(length=128), nullable=True),
    sa.Column('reply_to', sa.Uuid(), nullable=True),
    sa.Column('thoughtful', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('hidden', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    op.create_table('votes',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.Column('option_id', sa.String(length=64), nullable=False),
    sa.Column('cast_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('post_id', 'customer_id', name='pk_votes')
    )
    op.create_table('lotteries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=False, comment='the check-in call whose check-ins enter'),
    sa.Column('group_id', sa.Uuid(), nullable=True),
    sa.Column('draw_date', sa.Date(), nullable=False, comment='local day whose check-ins enter'),
    sa.Column('draw_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('winners_count', sa.Integer(), nullable=False),
    sa.Column('prize_points', sa.Integer(), nullable=False),
    sa.Column('thoughtful_weight', sa.Integer(), server_default='1', nullable=False),
    sa.Column('seed', sa.String(length=128), nullable=False, comment='secret until drawn'),
    sa.Column('seed_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='scheduled', nullable=False),
    sa.Column('entrants', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('winners', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('announcement_post_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lotteries')),
    sa.UniqueConstraint('post_id', 'draw_date', name='uq_lotteries_post_day')
    )
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('event_types', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('event_type', sa.String(length=128), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name='uq_webhook_deliveries_endpoint_event')
    )
    op.create_table('webhook_attempts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index(op.f('ix_campaigns_merchant_id'), 'campaigns', ['merchant_id'], unique=False)
    op.create_index('ix_posts_campaign', 'posts', ['campaign_id'], unique=False)
    op.create_index('ix_posts_due', 'posts', ['publish_at'], unique=False, postgresql_where=sa.text("status = 'scheduled'"))
    op.create_index('ix_posts_merchant_publish_at', 'posts', ['merchant_id', 'publish_at'], unique=False)
    op.create_index('ix_comments_group_activity', 'comments', ['merchant_id', 'group_id', 'created_at'], unique=False)
    op.create_index('ix_comments_post', 'comments', ['merchant_id', 'post_id', 'created_at'], unique=False)
    op.create_index('ix_lotteries_due', 'lotteries', ['draw_at'], unique=False, postgresql_where=sa.text("status = 'scheduled'"))
    op.create_index(op.f('ix_webhook_endpoints_merchant_id'), 'webhook_endpoints', ['merchant_id'], unique=False)
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_webhook_deliveries_merchant', 'webhook_deliveries', ['merchant_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_webhook_attempts_delivery_id'), 'webhook_attempts', ['delivery_id'], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
