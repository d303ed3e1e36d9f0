"""Ledger, lots, earn rules, tiers, orders and refunds, referrals, catalog and redemptions.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from rewards.models import metadata

# Built from the current models: a fresh database gets today's tables here (postings, for one, have been
# columns of their transfer since 0009), and later revisions bring older databases to the same state.

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = (
    "merchant_settings", "earn_rules", "tiers", "balances", "transfers", "lots", "orders",
    "refunds", "referrals", "daily_earns", "catalog_rewards", "redemptions",
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS postings")  # a table until 0009, which models.py no longer has
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[name] for name in TABLES])
