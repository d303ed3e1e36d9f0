"""The outbox's `position` column: the relay publishes in the order events were written.

Revision ID: 0004
Revises: 0003
"""

from meadow_runtime.migrations import add_outbox_position

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_position()


def downgrade() -> None:
    pass  # the column and index are part of the runtime tables from 0001 on; nothing to undo
