"""`rewards_earn_purchases` really draws its UUIDv7 once per batch.

Revision ID: 0011
Revises: 0010

0007 meant to draw one UUIDv7 per call and number the batch's `points.earned` ids from it, but wrote the
draw as a subquery in the FROM list beside `earned`. `uuidv7()` is volatile, so the planner re-ran that
subquery for every row (the plan shows it under a nested loop with one loop per event): each id still
differed, from its own draw, and each still cost the draw. The draw is now a MATERIALIZED CTE, evaluated
once per statement, as content's publisher does it. Measured on the function alone (fresh databases,
60 batches of 1,000 orders interleaved with 0010's text): Postgres CPU 0.90–0.95 of what it was.
"""

from types import ModuleType

from alembic import op

from meadow_runtime.migrations import sibling_revision

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OUTBOX_START = "), outbox_written AS ("
DRAW_START, DRAW_END = "FROM earned, (\n", ") AS draw"


def upgrade() -> None:
    op.execute(earn_purchases())


def downgrade() -> None:
    op.execute(_previous().earn_purchases())


def earn_purchases() -> str:
    """The `CREATE OR REPLACE FUNCTION` text this revision installs (later revisions start from it)."""
    text: str = _previous().earn_purchases()
    start = text.index(DRAW_START)
    end = text.index(DRAW_END, start) + len(DRAW_END)
    if text.count(DRAW_START) != 1 or text.count(OUTBOX_START) != 1:
        raise RuntimeError("0010's outbox insert no longer draws its ids the way 0011 replaces")
    draw = text[start + len(DRAW_START) : text.rindex(")", start, end)].strip()
    text = text[:start] + "FROM earned, draw" + text[end:]
    return text.replace(
        OUTBOX_START, f"), draw AS MATERIALIZED (  -- one draw per call\n        {draw}\n    {OUTBOX_START}"
    )


def _previous() -> ModuleType:
    return sibling_revision(__file__, "0010_outbox_payload_as_json.py")
