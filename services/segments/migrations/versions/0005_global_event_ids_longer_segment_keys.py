"""Ingested event ids are findable across merchants; segment keys hold up to 200 characters.

Revision ID: 0005
Revises: 0004

An event id is global: the outbox's primary key and every consumer's inbox use it alone. The ingest
endpoint refuses an id another merchant already used (409) instead of failing on the outbox's key or,
once that row was purged, being skipped by consumers as a duplicate; the index finds such ids.

`tag:preference:<category>` is 15 characters plus a category of up to 128: memberships' keys take 200,
as membership's projection of them does. Widening a varchar rewrites nothing.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # built without blocking ingest writes (CONCURRENTLY cannot run inside a transaction)
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_ingested_events_event_id ON ingested_events (event_id)")
    op.execute('ALTER TABLE segment_memberships ALTER COLUMN segment_key TYPE varchar(200) COLLATE "C"')


def downgrade() -> None:
    # fails while a key is longer than 128 characters: those memberships would not fit
    op.execute('ALTER TABLE segment_memberships ALTER COLUMN segment_key TYPE varchar(128) COLLATE "C"')
    op.execute("DROP INDEX ix_ingested_events_event_id")
