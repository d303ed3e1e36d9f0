"""A transfer's postings are columns of its row; `postings` becomes a view of them.

Revision ID: 0009
Revises: 0008

Every transfer wrote one `postings` row per account it moved (two or three per earning), each with its own
primary-key entry at a random place in the index. There are five accounts, so the transfer row now holds
one amount per account (`posted_customer`, `posted_issued`, `posted_redeemed`, `posted_expired`,
`posted_debt`, 0 where it moves nothing) and a CHECK refuses a transfer whose amounts do not sum to zero:
the database itself now keeps the double entry, where before only the writers did. The `postings` view
lists the non-zero amounts one per row, as the table did, for anyone reading the ledger as postings.

Measured on `rewards_earn_purchases` alone (fresh databases, 40–60 batches of 1,000 orders interleaved
with the previous function): without the postings insert the function's Postgres CPU is 0.88–0.91 of
what it was. Existing postings are copied into their transfers (one rewrite of `transfers`); a posting
without its transfer stops the upgrade rather than being dropped.
"""

from types import ModuleType

from alembic import op

from meadow_runtime.migrations import sibling_revision

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ACCOUNTS = ("customer", "issued", "redeemed", "expired", "debt")
BALANCED = "ck_transfers_postings_balance"

# The transfers' non-zero amounts as (transfer_id, account, amount) rows: the view, and the downgrade's copy
# back into a table.
NONZERO_LEGS = f"""
SELECT t.id AS transfer_id, leg.account, leg.amount
FROM transfers t
CROSS JOIN LATERAL (VALUES {", ".join(f"('{a}', t.posted_{a})" for a in ACCOUNTS)}) AS leg(account, amount)
WHERE leg.amount <> 0
"""

POSTINGS_VIEW = f"CREATE VIEW postings AS {NONZERO_LEGS}"

COPY_POSTINGS_IN = f"""
UPDATE transfers t SET {", ".join(f"posted_{a} = p.{a}" for a in ACCOUNTS)}
FROM (
    SELECT transfer_id,
           {", ".join(f"coalesce(sum(amount) FILTER (WHERE account = '{a}'), 0) AS {a}" for a in ACCOUNTS)}
    FROM postings GROUP BY transfer_id
) AS p
WHERE p.transfer_id = t.id
"""

POSTINGS_TABLE = """
CREATE TABLE postings (
    transfer_id uuid NOT NULL, account varchar(16) NOT NULL, amount bigint NOT NULL,
    CONSTRAINT pk_postings PRIMARY KEY (transfer_id, account)
)
"""

TRANSFER_AND_POSTINGS = """    ), transfers_written AS (
        INSERT INTO transfers (id, merchant_id, customer_id, kind, reason, points, cause_event_id,
                               cause_ref, occurred_at)
        SELECT tid, m, c, 'earn', 'purchase', points, event_id, order_id, paid_at FROM earned ORDER BY idx
    ), postings_written AS (
        INSERT INTO postings (transfer_id, account, amount)
        SELECT e.tid, p.account, p.amount
        FROM earned e, LATERAL (VALUES ('issued', -e.points), ('debt', e.repaid), ('customer', e.credited))
            AS p(account, amount)
        WHERE p.amount <> 0
    ), lots_written AS ("""

TRANSFER_WITH_POSTINGS = """    ), transfers_written AS (
        -- the issuing account pays for both the debt repaid and the points credited
        INSERT INTO transfers (id, merchant_id, customer_id, kind, reason, points, cause_event_id,
                               cause_ref, occurred_at, posted_issued, posted_debt, posted_customer)
        SELECT tid, m, c, 'earn', 'purchase', points, event_id, order_id, paid_at, -points, repaid, credited
        FROM earned ORDER BY idx
    ), lots_written AS ("""


def upgrade() -> None:
    bind = op.get_bind()
    # 0002 builds transfers from models.py: on a fresh database the columns and the check are there already
    # and there never was a postings table.
    for account in ACCOUNTS:
        op.execute(f"ALTER TABLE transfers ADD COLUMN IF NOT EXISTS posted_{account} bigint NOT NULL DEFAULT 0")
    if bind.exec_driver_sql("SELECT to_regclass('postings') IS NOT NULL").scalar():
        orphans = bind.exec_driver_sql(
            "SELECT count(*) FROM postings p WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = p.transfer_id)"
        ).scalar()
        if orphans:
            raise RuntimeError(f"{orphans} postings have no transfer: the ledger needs repair before 0009")
        op.execute(COPY_POSTINGS_IN)
        op.execute("DROP TABLE postings")
    if not bind.exec_driver_sql(f"SELECT 1 FROM pg_constraint WHERE conname = '{BALANCED}'").scalar():
        total = " + ".join(f"posted_{a}" for a in ACCOUNTS)
        op.execute(f"ALTER TABLE transfers ADD CONSTRAINT {BALANCED} CHECK ({total} = 0)")
    op.execute(POSTINGS_VIEW)
    op.execute(earn_purchases())


def downgrade() -> None:
    op.execute(_previous().earn_purchases())
    op.execute("DROP VIEW postings")
    op.execute(POSTINGS_TABLE)
    op.execute(f"INSERT INTO postings (transfer_id, account, amount) {NONZERO_LEGS}")
    op.execute(f"ALTER TABLE transfers DROP CONSTRAINT {BALANCED}")
    for account in ACCOUNTS:
        op.execute(f"ALTER TABLE transfers DROP COLUMN posted_{account}")


def earn_purchases() -> str:
    """The `CREATE OR REPLACE FUNCTION` text this revision installs (later revisions start from it)."""
    text: str = _previous().earn_purchases()
    if TRANSFER_AND_POSTINGS not in text:
        raise RuntimeError("0008's function no longer writes postings the way 0009 replaces")
    return text.replace(TRANSFER_AND_POSTINGS, TRANSFER_WITH_POSTINGS)


def _previous() -> ModuleType:
    return sibling_revision(__file__, "0008_reversals_count_when_earned.py")
