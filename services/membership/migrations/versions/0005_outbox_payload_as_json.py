"""The outbox's payload and headers are `json`: the relay sends their text as written.

Revision ID: 0005
Revises: 0004

See `meadow_runtime.migrations.set_outbox_json_type`. A fresh database has `json` from the runtime tables
already; this brings older ones to the same (rewriting the outbox once).
"""

from meadow_runtime.migrations import set_outbox_json_type

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    set_outbox_json_type("json")


def downgrade() -> None:
    set_outbox_json_type("jsonb")
