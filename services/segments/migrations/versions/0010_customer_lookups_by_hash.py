"""The per-customer lookups of memberships, orders and order lines go through hash indexes on the customer.

Revision ID: 0010
Revises: 0009

A customer has many rows in each of these tables, so the b-trees on (merchant_id, customer_id) held long
runs of equal keys: every insert found its place among them and rewrote a deduplicated posting list, ~3.5
µs a row, as much as the heap row and the primary key together, and a new customer's first order writes
one order, its lines and a dozen memberships. A hash index takes the same insert for ~1 µs and serves
the same probes (equality on the customer: the facts load, the customer 360). It keys on the customer
alone, as a hash index holds one column: the merchant is checked on the row, and two merchants' equal
customer ids only cost each other a heap visit. Nothing reads these indexes in order: the daily RFM job
groups a merchant's orders by hashing them.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("segment_memberships", "orders", "order_lines")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP INDEX ix_{table}_customer")
        op.execute(f"CREATE INDEX ix_{table}_customer ON {table} USING hash (customer_id)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP INDEX ix_{table}_customer")
        op.execute(f"CREATE INDEX ix_{table}_customer ON {table} (merchant_id, customer_id)")
