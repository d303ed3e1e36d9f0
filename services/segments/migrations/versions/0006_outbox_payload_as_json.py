"""The outbox's payload and headers are `json`: the relay sends their text as written.

Revision ID: 0006
Revises: 0005

See `meadow_runtime.migrations.set_outbox_json_type`. A fresh database has `json` from the runtime tables
already; this brings older ones to the same (rewriting the outbox once).
"""

from meadow_runtime.migrations import set_outbox_json_type

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    set_outbox_json_type("json")


def downgrade() -> None:
    set_outbox_json_type("jsonb")
