"""Index posts by campaign only where they have one: publishing rewrites every post row, and most posts
belong to no campaign, so a full index would take an entry per published post for nothing.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_posts_campaign", table_name="posts")
    op.create_index(
        "ix_posts_campaign", "posts", ["campaign_id"], postgresql_where=sa.text("campaign_id IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_posts_campaign", table_name="posts")
    op.create_index("ix_posts_campaign", "posts", ["campaign_id"])
