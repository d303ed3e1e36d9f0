"""A refund's reversal counts in the rolling tier window at the time its points were earned.

Revision ID: 0008
Revises: 0007

Until now the 12-month tier total took a reversal at the time the refund was applied: once the refunded
order's earning had left the window, its reversal was still inside it and kept pulling the customer's
total down, for up to a year, and could demote a customer whose recent earnings hold their tier.
Reversals now carry `earned_at`, when the points they take back were earned (the refunded order's
payment), and every tier evaluation (the ingest function's tier pass, the API paths and the daily job)
counts a transfer at `coalesce(earned_at, occurred_at)`. Existing reversals get it from their refund's
order.
"""

from alembic import op

from meadow_runtime.migrations import sibling_revision

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WINDOW_BY_OCCURRENCE = "AND t.occurred_at > now() - interval '365 days'"
WINDOW_BY_EARNING = "AND coalesce(t.earned_at, t.occurred_at) > now() - interval '365 days'"

BACKFILL = """
UPDATE transfers t SET earned_at = o.paid_at
FROM refunds r JOIN orders o ON o.merchant_id = r.merchant_id AND o.order_id = r.order_id
WHERE r.transfer_id = t.id AND t.kind = 'reverse' AND t.earned_at IS NULL
"""


def upgrade() -> None:
    # 0002 builds transfers from models.py, so on a fresh database the column is already there.
    op.execute("ALTER TABLE transfers ADD COLUMN IF NOT EXISTS earned_at timestamptz")
    op.execute(BACKFILL)
    op.execute(earn_purchases())


def downgrade() -> None:
    op.execute(_earn_purchases())
    op.execute("ALTER TABLE transfers DROP COLUMN earned_at")


def earn_purchases() -> str:
    """The `CREATE OR REPLACE FUNCTION` text this revision installs (later revisions start from it)."""
    return _earn_purchases().replace(WINDOW_BY_OCCURRENCE, WINDOW_BY_EARNING)


def _earn_purchases() -> str:
    text: str = sibling_revision(__file__, "0007_event_ids_from_one_random_draw.py").earn_purchases()
    if WINDOW_BY_OCCURRENCE not in text:
        raise RuntimeError("0007's function no longer has the tier window 0008 replaces")
    return text
