"""Outbox, inbox and idempotency keys.

Revision ID: 0001
Revises:
"""

from meadow_runtime.migrations import create_runtime_tables, drop_runtime_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_runtime_tables()


def downgrade() -> None:
    drop_runtime_tables()
