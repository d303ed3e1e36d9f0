"""Ingested events keep a digest of their body, so an id sent again with another body is refused.

Revision ID: 0008
Revises: 0007

Before, an id already ingested was reported as a duplicate whatever the body: an integrator who reused
an id for a different event lost that event without a word. Rows ingested before this revision have no
digest and are taken as matching (nothing to compare with).
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingested_events ADD COLUMN body_digest bytea")


def downgrade() -> None:
    op.execute("ALTER TABLE ingested_events DROP COLUMN body_digest")
