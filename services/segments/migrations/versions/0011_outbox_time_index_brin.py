"""The outbox's `created_at` index is a block-range (BRIN) index: cheaper for every event written.

Revision ID: 0011
Revises: 0010

See `meadow_runtime.migrations.set_outbox_time_index`.
"""

from meadow_runtime.migrations import set_outbox_time_index

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    set_outbox_time_index("brin")


def downgrade() -> None:
    set_outbox_time_index("btree")
