"""Identifier columns compare bytewise (collation "C"); `rewards_earn_purchases` does less per line.

Revision ID: 0006
Revises: 0005

Ids are opaque: with the database's locale collation every index probe and insertion on them, and every
sort or grouping of a batch's keys, went through strcoll. For UTF-8 text the order is the same as
C.UTF-8's (code points), so listings keep their order there.

The function keeps its results (see 0005), takes the batch as one array of `rewards_paid_line` records
(one per order line, as 0005's eleven parallel arrays held it: asyncpg encodes the records for about
two thirds of the client's cost), and:
- prices a batch's lines from one rate per (merchant, category) pair of the batch instead of
  aggregating the merchant's purchase rules again for every line;
- no longer sorts the batch to find repeated orders and repeated line ids: the caller sends each order
  once (its first delivery) with each line id once (its last occurrence). A repeated order sent anyway
  still cannot earn twice: its earning's lot and transfer ids collide and the batch fails, and is
  retried event by event;
- skips the tier pass when no merchant of the batch has tiers and none of its customers holds one;
- makes the `points.earned` event ids with `uuidv7()` where the server has it (Postgres 18+);
- groups and sorts the batch's keys bytewise, as the columns now compare (balances are still locked
  in (merchant, customer) order, the same order as every other path takes them).
"""

from types import ModuleType

from alembic import op

from meadow_runtime.migrations import set_key_collation, sibling_revision

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

M, C, REF = 64, 128, 256
KEYS: dict[str, tuple[tuple[str, int], ...]] = {
    "merchant_settings": (("merchant_id", M),),
    "earn_rules": (("merchant_id", M),),
    "tiers": (("merchant_id", M),),
    "balances": (("merchant_id", M), ("customer_id", C)),
    "transfers": (("merchant_id", M), ("customer_id", C)),
    "lots": (("merchant_id", M), ("customer_id", C)),
    "orders": (("merchant_id", M), ("order_id", REF), ("customer_id", C)),
    "refunds": (("merchant_id", M), ("refund_id", REF), ("order_id", REF), ("customer_id", C)),
    "referrals": (("merchant_id", M), ("invitee_customer_id", C), ("inviter_customer_id", C)),
    "daily_earns": (("merchant_id", M), ("customer_id", C)),
    "catalog_rewards": (("merchant_id", M),),
    "redemptions": (("merchant_id", M), ("customer_id", C)),
}

# One order line of a batch, carrying its order's fields: one array of these is cheaper to send than
# eleven parallel arrays.
PAID_LINE = """
CREATE TYPE rewards_paid_line AS (
    position int, merchant_id text, order_id text, customer_id text, paid_at timestamptz, utc_offset int,
    event_id uuid, transfer_id uuid, line_id text, category text, amount bigint
)
"""

OLD_SIGNATURE = (
    "int[], text[], text[], text[], timestamptz[], int[], uuid[], uuid[], text[], text[], bigint[], "
    "text, jsonb, text, text, text"
)
NEW_SIGNATURE = "rewards_paid_line[], text, jsonb, text, text, text"

EARN_PURCHASES = """
CREATE FUNCTION rewards_earn_purchases(
    paid rewards_paid_line[], emitted_at text, trace_headers jsonb, event_topic text, event_type text,
    event_source text
) RETURNS TABLE (
    what text, merchant_id text, customer_id text, order_id text, at timestamptz,
    old_tier text, old_rank int, new_tier text, new_rank int
)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    touched_m text[];
    touched_c text[];
    parked_m text[];
    parked_o text[];
    invitee_m text[];
    invitee_c text[];
    invitee_at timestamptz[];
    tiers_in_play boolean;
BEGIN
    -- Every customer of the batch, created if new and locked in sorted order (concurrent batches and the
    -- API lock the same way, so they queue instead of deadlocking). DO UPDATE ... WHERE false locks an
    -- existing row without writing a new version of it.
    INSERT INTO balances (merchant_id, customer_id)
    SELECT DISTINCT merchant_id COLLATE "C", customer_id COLLATE "C" FROM unnest(paid) ORDER BY 1, 2
    ON CONFLICT (merchant_id, customer_id) DO UPDATE SET points = balances.points WHERE false;

    WITH rates AS MATERIALIZED (
        -- the batch's (merchant, category) pairs are few: price each pair once (materialized, or the
        -- planner folds the rules' aggregate back into the per-line join)
        SELECT k.m, k.category, coalesce(rate.per_unit, 0) AS per_unit
        FROM (SELECT DISTINCT u.merchant_id COLLATE "C" AS m, u.category COLLATE "C" AS category
              FROM unnest(paid) AS u) AS k
        LEFT JOIN LATERAL (
            SELECT sum(r.points_per_unit) AS per_unit FROM earn_rules r
            WHERE r.merchant_id = k.m AND r.kind = 'purchase' AND r.active
              AND NOT k.category = ANY(r.exclude_categories)
              AND (cardinality(r.include_categories) = 0 OR k.category = ANY(r.include_categories))
        ) AS rate ON true
    ), lines_in AS (
        SELECT l.idx, l.m COLLATE "C" AS m, l.order_id COLLATE "C" AS order_id, l.c COLLATE "C" AS c,
               l.paid_at, l.utc_offset, l.event_id, l.tid, l.line_id, l.amount,
               b.points AS points_before, b.debt AS debt_before, b.first_paid_at AS first_paid_before,
               b.tier_rank AS tier_before,
               floor(l.amount * rates.per_unit * coalesce(tier.multiplier, 1) / 100)::bigint AS line_points
        FROM unnest(paid) AS l(idx, m, order_id, c, paid_at, utc_offset, event_id, tid, line_id, category,
                               amount)
        JOIN rates ON rates.m = l.m COLLATE "C" AND rates.category = l.category COLLATE "C"
        JOIN balances b ON b.merchant_id = l.m AND b.customer_id = l.c
        LEFT JOIN tiers tier ON tier.merchant_id = l.m AND tier.rank = b.tier_rank
        -- an order earns only when its row is new: replays stop here
        WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.merchant_id = l.m AND o.order_id = l.order_id)
    ), new_orders AS (
        SELECT idx, m, order_id, c, paid_at, utc_offset, event_id, tid, points_before, debt_before,
               first_paid_before, tier_before, sum(line_points) AS points,
               jsonb_object_agg(line_id, jsonb_build_array(amount, line_points)) AS lines
        FROM lines_in
        GROUP BY idx, m, order_id, c, paid_at, utc_offset, event_id, tid, points_before, debt_before,
                 first_paid_before, tier_before
    ), settled AS (
        -- A customer's earnings repay their debt first, in delivery order: with `through` the points of
        -- their new orders up to this one, the debt takes min(through, debt) and the rest is credited.
        SELECT n.*, least(n.points, greatest(n.debt_before - (through - n.points), 0)) AS repaid,
               n.points_before + greatest(through - n.debt_before, 0) AS balance_after
        FROM (
            SELECT new_orders.*, sum(points) OVER (PARTITION BY m, c ORDER BY idx) AS through
            FROM new_orders
        ) AS n
    ), recorded AS (
        -- ON CONFLICT only for an order a concurrent transaction recorded since this statement began: its
        -- earning then collides on the transfer's id and the batch is retried, so nothing earns twice.
        INSERT INTO orders (merchant_id, order_id, customer_id, paid_at, lines, earn_transfer_id)
        SELECT m, order_id, c, paid_at, lines, CASE WHEN points > 0 THEN tid END FROM new_orders ORDER BY idx
        ON CONFLICT (merchant_id, order_id) DO NOTHING
    ), earned AS (
        SELECT st.*, st.points - st.repaid AS credited,
               -- whole days of 24 hours, as Python's timedelta(days=...) adds, whatever the session zone
               st.paid_at + make_interval(hours => 24 * coalesce(s.points_validity_days, 365)) AS expires_at
        FROM settled st LEFT JOIN merchant_settings s ON s.merchant_id = st.m
        WHERE st.points > 0
    ), transfers_written AS (
        INSERT INTO transfers (id, merchant_id, customer_id, kind, reason, points, cause_event_id,
                               cause_ref, occurred_at)
        SELECT tid, m, c, 'earn', 'purchase', points, event_id, order_id, paid_at FROM earned ORDER BY idx
    ), postings_written AS (
        INSERT INTO postings (transfer_id, account, amount)
        SELECT e.tid, p.account, p.amount
        FROM earned e, LATERAL (VALUES ('issued', -e.points), ('debt', e.repaid), ('customer', e.credited))
            AS p(account, amount)
        WHERE p.amount <> 0
    ), lots_written AS (
        INSERT INTO lots (id, merchant_id, customer_id, points, remaining, expires_at, earned_at)
        SELECT tid, m, c, credited, credited, expires_at, paid_at FROM earned WHERE credited > 0
    ), outbox_written AS (
        INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, headers)
        SELECT new_id, event_topic, m || ':' || c, event_type,
               jsonb_build_object(
                   'id', new_id, 'type', event_type, 'source', event_source,
                   'time', emitted_at, 'merchant_id', m, 'subject', c,
                   'data', jsonb_build_object(
                       'transfer_id', tid, 'customer_id', c, 'points', points, 'reason', 'purchase',
                       'cause_event_id', event_id,
                       'expires_at', rewards_json_time(expires_at, utc_offset),
                       'debt_repaid', repaid, 'balance_after', balance_after
                   )
               ),
               trace_headers
        FROM (SELECT earned.*, {uuid7} AS new_id FROM earned) AS e
        ORDER BY idx
    ), per_customer AS (
        SELECT m, c, first_paid_before, min(paid_at) AS first_paid, sum(points - repaid) AS credited,
               sum(repaid) AS repaid
        FROM settled GROUP BY m, c, first_paid_before
    ), balances_written AS (
        UPDATE balances b
        SET points = b.points + pc.credited, debt = b.debt - pc.repaid,
            first_paid_at = least(b.first_paid_at, pc.first_paid), updated_at = now()
        FROM per_customer pc
        WHERE b.merchant_id = pc.m AND b.customer_id = pc.c
    ), parked AS (  -- new orders whose refund arrived first
        SELECT n.m, n.order_id FROM new_orders n
        WHERE EXISTS (SELECT 1 FROM refunds r
                      WHERE r.merchant_id = n.m AND r.order_id = n.order_id AND r.reversed IS NULL)
    ), invitees AS (  -- first orders of customers with a pending referral
        SELECT pc.m, pc.c, pc.first_paid FROM per_customer pc
        WHERE pc.first_paid_before IS NULL AND EXISTS (
            SELECT 1 FROM referrals r
            WHERE r.merchant_id = pc.m AND r.invitee_customer_id = pc.c AND r.status = 'pending')
    )
    SELECT (SELECT array_agg(m) FROM per_customer), (SELECT array_agg(c) FROM per_customer),
           (SELECT array_agg(m) FROM parked), (SELECT array_agg(order_id) FROM parked),
           (SELECT array_agg(m) FROM invitees), (SELECT array_agg(c) FROM invitees),
           (SELECT array_agg(first_paid) FROM invitees),
           (SELECT bool_or(tier_before > 0) FROM new_orders)
               OR EXISTS (SELECT 1 FROM tiers t WHERE t.merchant_id IN (SELECT u.merchant_id FROM unnest(paid) AS u))
    INTO touched_m, touched_c, parked_m, parked_o, invitee_m, invitee_c, invitee_at, tiers_in_play;

    RETURN QUERY
    SELECT 'refund', k.m, NULL::text, k.o, NULL::timestamptz, NULL, NULL::int, NULL, NULL::int
    FROM unnest(parked_m, parked_o) AS k(m, o);

    RETURN QUERY
    SELECT 'referral', k.m, k.c, NULL::text, k.at, NULL, NULL::int, NULL, NULL::int
    FROM unnest(invitee_m, invitee_c, invitee_at) AS k(m, c, at);

    -- Tiers by rolling 12-month net earned points (this batch's transfers included), only where the
    -- merchant has tiers or the customer holds one (none of that in the batch: nothing to evaluate).
    IF NOT coalesce(tiers_in_play, false) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS (
        SELECT b.merchant_id, b.customer_id, b.tier_rank, b.tier_name
        FROM unnest(touched_m, touched_c) AS k(m, c)
        JOIN balances b ON b.merchant_id = k.m AND b.customer_id = k.c
        WHERE b.tier_rank > 0 OR EXISTS (SELECT 1 FROM tiers t WHERE t.merchant_id = b.merchant_id)
    ), reached AS (
        SELECT cd.*, lvl.rank AS to_rank, lvl.name AS to_name
        FROM candidates cd
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(CASE WHEN t.kind = 'earn' THEN t.points ELSE -t.points END), 0) AS points
            FROM transfers t
            WHERE t.merchant_id = cd.merchant_id AND t.customer_id = cd.customer_id
              AND t.kind IN ('earn', 'reverse') AND t.occurred_at > now() - interval '365 days'
        ) AS rolling
        LEFT JOIN LATERAL (
            SELECT t.rank, t.name FROM tiers t
            WHERE t.merchant_id = cd.merchant_id AND rolling.points >= t.threshold_points
            ORDER BY t.rank DESC LIMIT 1
        ) AS lvl ON true
    ), changed AS (
        UPDATE balances b SET tier_rank = coalesce(r.to_rank, 0), tier_name = r.to_name
        FROM reached r
        WHERE b.merchant_id = r.merchant_id AND b.customer_id = r.customer_id
          AND (r.tier_rank, r.tier_name) IS DISTINCT FROM (coalesce(r.to_rank, 0), r.to_name)
        RETURNING b.merchant_id, b.customer_id, r.tier_name AS old_tier, r.tier_rank AS old_rank,
                  b.tier_name AS new_tier, b.tier_rank AS new_rank
    )
    SELECT 'tier', ch.merchant_id::text, ch.customer_id::text, NULL::text, NULL::timestamptz,
           ch.old_tier::text, ch.old_rank, ch.new_tier::text, ch.new_rank
    FROM changed ch ORDER BY ch.merchant_id, ch.customer_id;
END
$fn$
"""


def upgrade() -> None:
    set_key_collation(KEYS, "C")
    op.execute(f"DROP FUNCTION rewards_earn_purchases({OLD_SIGNATURE})")
    op.execute(PAID_LINE)
    op.execute(EARN_PURCHASES.replace("{uuid7}", server_uuid7()))


def downgrade() -> None:
    op.execute(f"DROP FUNCTION rewards_earn_purchases({NEW_SIGNATURE})")
    op.execute("DROP TYPE rewards_paid_line")
    set_key_collation(KEYS, "default")
    op.execute(_revision_0005().EARN_PURCHASES)


def server_uuid7() -> str:
    """The SQL that makes a UUIDv7 on this server: `uuidv7()` from Postgres 18 on, the SQL-made one 0005
    used before."""
    has_uuidv7 = op.get_bind().exec_driver_sql("SELECT current_setting('server_version_num')::int >= 180000")
    return "uuidv7()" if has_uuidv7.scalar() else _revision_0005()._UUID7


def _revision_0005() -> ModuleType:
    return sibling_revision(__file__, "0005_earn_purchases_function.py")
