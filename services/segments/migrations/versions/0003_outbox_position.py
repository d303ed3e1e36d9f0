"""The outbox's `position` column: the relay publishes in the order events were written.

Revision ID: 0003
Revises: 0002
"""

from meadow_runtime.migrations import add_outbox_position

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_position()


def downgrade() -> None:
    pass  # the column and index are part of the runtime tables from 0001 on; nothing to undo
