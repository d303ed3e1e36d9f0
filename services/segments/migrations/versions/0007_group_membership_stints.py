"""A group membership is a row per stint, so a rejoin no longer rewrites when the customer first joined.

Revision ID: 0007
Revises: 0006

One row per (group, customer) held one join time: a leave and a later join moved it, and the group's
metrics for the days of the first stint lost that member. Now each stint (join to leave) is its own row,
keyed by its join time, and at most one stint per group and customer is open.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE group_members DROP CONSTRAINT pk_group_members")
    op.execute(
        "ALTER TABLE group_members ADD CONSTRAINT pk_group_members "
        "PRIMARY KEY (merchant_id, group_id, customer_id, joined_at)"
    )
    op.execute(
        "CREATE UNIQUE INDEX ux_group_members_open ON group_members (merchant_id, group_id, customer_id) "
        "WHERE left_at IS NULL"
    )


def downgrade() -> None:
    # the latest stint of each membership stays, as before this revision
    op.execute("DROP INDEX ux_group_members_open")
    op.execute(
        "DELETE FROM group_members gm USING group_members later "
        "WHERE later.merchant_id = gm.merchant_id AND later.group_id = gm.group_id "
        "AND later.customer_id = gm.customer_id AND later.joined_at > gm.joined_at"
    )
    op.execute("ALTER TABLE group_members DROP CONSTRAINT pk_group_members")
    op.execute(
        "ALTER TABLE group_members ADD CONSTRAINT pk_group_members PRIMARY KEY (merchant_id, group_id, customer_id)"
    )
