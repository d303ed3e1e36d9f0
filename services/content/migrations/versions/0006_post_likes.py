"""Likes: one per member and post, with the group it counts for (segments' likes per day).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "likes",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=True),
        sa.Column("liked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "post_id", "customer_id", name="pk_likes"),
    )


def downgrade() -> None:
    op.drop_table("likes")
