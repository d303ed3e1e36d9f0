"""Each customer row carries the version of the customer's facts; each merchant a memberships generation.

Revision ID: 0009
Revises: 0008

A worker keeps the facts it last committed for a customer and reuses them while the row's version is the
one it saw then, instead of reading every order line and membership again for each event. Whoever
changes a customer's facts gives the row a new version in the same transaction; whoever rewrites a
merchant's memberships outside an evaluation (a segment saved, recomputed or deleted) gives the merchant a
new generation. Both come from one sequence, so a value is never handed out twice (a customer deleted
and created again does not take up an old version). Rows before this revision share version 0, which is
as good as any: no worker holds facts read before the column existed.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE facts_versions")
    # A constant default first: existing rows take it without the table being rewritten.
    op.execute("ALTER TABLE customers ADD COLUMN facts_version bigint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE customers ALTER COLUMN facts_version SET DEFAULT nextval('facts_versions')")
    op.execute(
        """
        CREATE TABLE membership_generations (
            merchant_id varchar(64) COLLATE "C" NOT NULL PRIMARY KEY,
            generation bigint NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE membership_generations")
    op.execute("ALTER TABLE customers DROP COLUMN facts_version")
    op.execute("DROP SEQUENCE facts_versions")
