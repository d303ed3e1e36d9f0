"""`rewards_earn_purchases` draws one UUIDv7 per batch instead of one per `points.earned` event.

Revision ID: 0007
Revises: 0006

A server-made UUIDv7 costs ~4 µs (the random bytes come from the strong random source), and the function
made one per outbox row. It now makes one per call and numbers the batch's events from it, as RFC 9562
§6.2 (method 2) allows: each id is that UUID with its last four bytes replaced by (their value + the
order's position in the batch) mod 2³², so version, variant, timestamp and the other 42 random bits
stay as drawn, and the ids of one batch differ from each other by construction. Measured on the function
alone (60 batches of 1,000 orders, three interleaved pairs): Postgres CPU 5.54 → 4.94 s, about 10 µs per
event.

The function's signature and results are unchanged; only the id expression of 0006's text is replaced.
"""

from alembic import op

from meadow_runtime.migrations import sibling_revision

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ONE_ID_PER_EVENT = "FROM (SELECT earned.*, {uuid7} AS new_id FROM earned) AS e"

# The ids of the batch from one draw: `idx` is the order's position in the batch, unique within it.
IDS_FROM_ONE_DRAW = """FROM (
            SELECT earned.*,
                   encode(overlay(draw.bytes PLACING int4send(((draw.tail + idx) % 4294967296 - 2147483648)::int)
                                  FROM 13 FOR 4), 'hex')::uuid AS new_id
            FROM earned, (
                SELECT one.bytes, ('x' || encode(substring(one.bytes FROM 13 FOR 4), 'hex'))::bit(32)::bigint AS tail
                FROM (SELECT uuid_send({uuid7}) AS bytes) AS one
            ) AS draw
        ) AS e"""


def upgrade() -> None:
    _replace_function(IDS_FROM_ONE_DRAW)


def downgrade() -> None:
    _replace_function(ONE_ID_PER_EVENT)


def earn_purchases(id_expression: str = IDS_FROM_ONE_DRAW) -> str:
    """The `CREATE OR REPLACE FUNCTION` text this revision installs (later revisions start from it)."""
    previous = sibling_revision(__file__, "0006_bytewise_keys_leaner_earn.py")
    text = previous.EARN_PURCHASES
    if ONE_ID_PER_EVENT not in text:
        raise RuntimeError("0006's function no longer has the id expression 0007 replaces")
    function = text.replace(ONE_ID_PER_EVENT, id_expression).replace("{uuid7}", previous.server_uuid7())
    return function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _replace_function(id_expression: str) -> None:
    op.execute(earn_purchases(id_expression))

