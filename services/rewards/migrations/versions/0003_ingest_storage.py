"""Cheaper ledger writes: no foreign key from postings to transfers; free space in balance pages.

Revision ID: 0003
Revises: 0002

0002 builds its tables from the current metadata, which already has both changes; this revision brings
databases created before them to the same state (hence IF EXISTS; and since 0009 a fresh database
has no postings table).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE IF EXISTS postings DROP CONSTRAINT IF EXISTS fk_postings_transfer_id_transfers")
    op.execute("ALTER TABLE balances SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE balances RESET (fillfactor)")
    op.execute(
        "ALTER TABLE IF EXISTS postings ADD CONSTRAINT fk_postings_transfer_id_transfers "
        "FOREIGN KEY (transfer_id) REFERENCES transfers (id)"
    )
