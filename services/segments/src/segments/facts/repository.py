"""Reads and writes of the facts tables. Every statement names the merchant; writes are idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from sys import intern
from typing import Any

from sqlalchemy import CursorResult, text
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils import uuid7

from meadow_contracts import OrderPaid

from ..domain.facts import CustomerFacts, Favorite, PurchasedLine, RefundedLine
from .cache import FACTS_LOADED, CustomerKey, Entry, FactsCache, History


def time_of(micros: str) -> str:
    """SQL for the `timestamptz` that an expression's whole microseconds since the epoch are (as
    `epoch_micros` sends times). Seconds and microseconds are added apart: a bigint times an interval goes
    through a float, exact only up to 2^53 µs (years 1685 to 2255)."""
    return (
        f"(to_timestamp(CAST({micros} AS bigint) / 1000000)"
        f" + (CAST({micros} AS bigint) % 1000000) * interval '1 microsecond')"
    )


# A customer is first seen at their earliest event, whatever order the events arrive in: an existing
# customer's first_seen_at moves back when an earlier event comes (another topic's, or a backfill). On a
# conflict the row is locked, in customer order (as the facts load locks them after), and compared with
# its committed version, so a concurrent batch creating the customer cannot make the earlier time lost.
# `xmax = 0` tells the rows this statement created from the ones it moved back.
ENSURE_CUSTOMERS = text(
    f"""
    INSERT INTO customers AS c (merchant_id, customer_id, first_seen_at)
    SELECT :merchant, u.customer_id, {time_of("min(CAST(u.at AS bigint))")}
    FROM ROWS FROM (json_array_elements_text(CAST(:ids AS json)),
                    json_array_elements_text(CAST(:ats AS json)))
         AS u(customer_id, at)
    GROUP BY u.customer_id ORDER BY u.customer_id
    ON CONFLICT (merchant_id, customer_id) DO UPDATE SET first_seen_at = excluded.first_seen_at
    WHERE c.first_seen_at > excluded.first_seen_at
    RETURNING c.customer_id, c.xmax = 0 AS created
    """
)
# Whole batches in one statement each: one round trip, no per-row parameter binding. Ids, amounts and
# times travel as JSON arrays, walked in step by ROWS FROM: bound as SQL arrays, the driver type-checks
# every element (2.6–4.5 µs of client CPU a line against 1.2, measured on 1,000-line batches), and
# encodes a timestamptz in ~1.1 µs. Times are whole microseconds since the epoch (`epoch_micros`), exact
# as a bigint, made times again by Postgres (`time_of`).
INSERT_ORDERS = text(
    f"""
    INSERT INTO orders (merchant_id, order_id, customer_id, paid_at, total_minor, channel)
    SELECT :merchant, o.order_id, o.customer_id,
           {time_of("o.paid_at")},
           CAST(o.total_minor AS bigint), o.channel
    FROM ROWS FROM (json_array_elements_text(CAST(:order_ids AS json)),
                    json_array_elements_text(CAST(:customer_ids AS json)),
                    json_array_elements_text(CAST(:paid_at AS json)),
                    json_array_elements_text(CAST(:totals AS json)),
                    json_array_elements_text(CAST(:channels AS json)))
         AS o(order_id, customer_id, paid_at, total_minor, channel)
    ON CONFLICT DO NOTHING
    """
)
INSERT_ORDER_LINES = text(
    f"""
    INSERT INTO order_lines (merchant_id, order_id, line_id, customer_id, product_id, category, amount_minor,
                             paid_at)
    SELECT :merchant, l.order_id, l.line_id, l.customer_id, l.product_id, l.category,
           CAST(l.amount_minor AS bigint),
           {time_of("l.paid_at")}
    FROM ROWS FROM (json_array_elements_text(CAST(:order_ids AS json)),
                    json_array_elements_text(CAST(:line_ids AS json)),
                    json_array_elements_text(CAST(:customer_ids AS json)),
                    json_array_elements_text(CAST(:product_ids AS json)),
                    json_array_elements_text(CAST(:categories AS json)),
                    json_array_elements_text(CAST(:amounts AS json)),
                    json_array_elements_text(CAST(:paid_at AS json)))
         AS l(order_id, line_id, customer_id, product_id, category, amount_minor, paid_at)
    ON CONFLICT DO NOTHING
    """
)
ADOPT_ORDER_CHANNEL = text(
    """
    UPDATE customers SET channel = :channel
    WHERE merchant_id = :merchant AND customer_id = :customer_id AND channel IS NULL
    """
)
# The refunded line's product and category come from the order line, when the order is known.
INSERT_REFUND_LINE = text(
    """
    INSERT INTO refund_lines (merchant_id, refund_id, line_id, order_id, customer_id, product_id, category,
                              amount_minor, refunded_at, is_complaint)
    SELECT :merchant, :refund_id, :line_id, :order_id, :customer_id, ol.product_id, ol.category,
           :amount_minor, :refunded_at, :is_complaint
    FROM (SELECT 1) AS one
    LEFT JOIN order_lines ol ON ol.merchant_id = :merchant AND ol.order_id = :order_id
        AND ol.line_id = :line_id
    ON CONFLICT DO NOTHING
    """
)
# One statement per batch. A missing value leaves the stored one as it is; of several updates of one
# customer in the batch, the latest value of each field wins, as the events arrived in that order. Only
# customers whose profile this changes are updated and returned: order systems re-send whole profiles,
# and a re-sent one changes no rule's outcome.
UPDATE_PROFILES = text(
    """
    UPDATE customers c SET
        gender = coalesce(p.gender, c.gender), birth_year = coalesce(p.birth_year, c.birth_year),
        city = coalesce(p.city, c.city), size = coalesce(p.size, c.size),
        channel = coalesce(p.channel, c.channel)
    FROM (
        SELECT customer_id,
               (array_agg(gender ORDER BY n DESC) FILTER (WHERE gender IS NOT NULL))[1] AS gender,
               (array_agg(birth_year ORDER BY n DESC) FILTER (WHERE birth_year IS NOT NULL))[1] AS birth_year,
               (array_agg(city ORDER BY n DESC) FILTER (WHERE city IS NOT NULL))[1] AS city,
               (array_agg(size ORDER BY n DESC) FILTER (WHERE size IS NOT NULL))[1] AS size,
               (array_agg(channel ORDER BY n DESC) FILTER (WHERE channel IS NOT NULL))[1] AS channel
        FROM unnest(CAST(:customer_ids AS varchar[]), CAST(:genders AS varchar[]),
                    CAST(:birth_years AS int[]), CAST(:cities AS varchar[]), CAST(:sizes AS varchar[]),
                    CAST(:channels AS varchar[]))
             WITH ORDINALITY AS u(customer_id, gender, birth_year, city, size, channel, n)
        GROUP BY customer_id
    ) AS p
    WHERE c.merchant_id = :merchant AND c.customer_id = p.customer_id
      AND (c.gender, c.birth_year, c.city, c.size, c.channel) IS DISTINCT FROM
          (coalesce(p.gender, c.gender), coalesce(p.birth_year, c.birth_year), coalesce(p.city, c.city),
           coalesce(p.size, c.size), coalesce(p.channel, c.channel))
    RETURNING c.customer_id
    """
)
INSERT_FAVORITE = text(
    """
    INSERT INTO favorites (merchant_id, customer_id, product_id, category, favorited_at)
    VALUES (:merchant, :customer_id, :product_id, :category, :favorited_at)
    ON CONFLICT DO NOTHING
    """
)
# A join after a leave starts a new stint; a join while a stint is open, or a stale one (older than a
# leave), changes nothing.
JOIN_GROUP = text(
    """
    INSERT INTO group_members (merchant_id, group_id, customer_id, joined_at)
    SELECT CAST(:merchant AS varchar), CAST(:group_id AS varchar), CAST(:customer_id AS varchar),
           CAST(:at AS timestamptz)
    WHERE NOT EXISTS (
        SELECT 1 FROM group_members gm
        WHERE gm.merchant_id = :merchant AND gm.group_id = :group_id AND gm.customer_id = :customer_id
          AND (gm.left_at IS NULL OR gm.left_at > :at)
    )
    ON CONFLICT DO NOTHING
    """
)
LEAVE_GROUP = text(
    """
    UPDATE group_members SET left_at = :at
    WHERE merchant_id = :merchant AND group_id = :group_id AND customer_id = :customer_id
      AND left_at IS NULL AND joined_at <= :at
    """
)
INSERT_ACTIVITY = text(
    """
    INSERT INTO activities (merchant_id, activity_id, customer_id, group_id, kind, occurred_at)
    VALUES (:merchant, :activity_id, :customer_id, :group_id, :kind, :at)
    ON CONFLICT DO NOTHING
    """
)
INSERT_REFERRAL = text(
    """
    INSERT INTO referrals (merchant_id, invitee_id, inviter_id, accepted_at)
    VALUES (:merchant, :invitee_id, :inviter_id, :at)
    ON CONFLICT DO NOTHING
    """
)
UPDATE_TIER = text(
    "UPDATE customers SET tier_rank = :rank WHERE merchant_id = :merchant AND customer_id = :customer_id"
)
INVITERS_OF = text(
    "SELECT DISTINCT inviter_id FROM referrals WHERE merchant_id = :merchant AND invitee_id = ANY(:ids)"
)


# Loading a batch's customers. Every per-customer read is a probe of the customer's index from a list of
# ids (LATERAL, or a correlated subquery), never `customer_id = ANY(...)` against a table not keyed by
# customer first: with that form the plan follows the table statistics, and on a table that grew since its
# last ANALYZE the planner scanned all of the merchant's memberships / order lines (through another index)
# for each batch. Memberships come as one array per customer: customers sit in dozens of segments.
# The row's facts_version and the merchant's memberships generation come last: they say whether facts
# this process kept are still current (cache.py).
READ_CUSTOMERS = """
    SELECT customer_id, gender, birth_year, city, size, channel, tier_rank, lifecycle,
           r_score, f_score, m_score,
           facts_version,
           (SELECT g.generation FROM membership_generations g WHERE g.merchant_id = :merchant) AS generation
    FROM customers WHERE merchant_id = :merchant AND customer_id = ANY(CAST(:ids AS varchar[]))
    ORDER BY customer_id
"""
LOAD_CUSTOMERS = text(READ_CUSTOMERS + "FOR UPDATE")
# A read-only view (the customer 360) neither waits for a batch re-evaluating the customer nor holds it up.
VIEW_CUSTOMERS = text(READ_CUSTOMERS)
# Everything else about the locked customers, one row each, in one statement read after the lock: a
# statement that waited for a row lock still sees the snapshot it started with, which can predate the
# memberships the lock holder wrote. Each fact table is probed through its customer index; an aggregate
# without GROUP BY yields one row, so a customer with none of a fact gets NULL arrays.
LOAD_FACTS = text(
    """
    SELECT u.customer_id,
           ARRAY(SELECT m.segment_key FROM segment_memberships m
                 WHERE m.merchant_id = :merchant AND m.customer_id = u.customer_id) AS segment_keys,
           l.orders, l.products, l.categories, l.amounts, l.paid,
           r.refunds, r.orders, r.products, r.categories, r.amounts, r.refunded, r.complaints,
           f.products, f.categories, f.favorited,
           ARRAY(SELECT gm.group_id FROM group_members gm
                 WHERE gm.merchant_id = :merchant AND gm.customer_id = u.customer_id AND gm.left_at IS NULL)
               AS active_groups,
           (SELECT max(ac.occurred_at) FROM activities ac
            WHERE ac.merchant_id = :merchant AND ac.customer_id = u.customer_id AND ac.group_id IS NOT NULL)
               AS last_group_activity_at,
           rf.made, rf.bought
    FROM unnest(CAST(:ids AS varchar[])) AS u(customer_id)
    CROSS JOIN LATERAL (
        SELECT array_agg(ol.order_id) AS orders, array_agg(ol.product_id) AS products,
               array_agg(ol.category) AS categories, array_agg(ol.amount_minor) AS amounts,
               array_agg(ol.paid_at) AS paid
        FROM order_lines ol WHERE ol.merchant_id = :merchant AND ol.customer_id = u.customer_id
    ) AS l
    CROSS JOIN LATERAL (
        SELECT array_agg(rl.refund_id) AS refunds, array_agg(rl.order_id) AS orders,
               array_agg(rl.product_id) AS products, array_agg(rl.category) AS categories,
               array_agg(rl.amount_minor) AS amounts, array_agg(rl.refunded_at) AS refunded,
               array_agg(rl.is_complaint) AS complaints
        FROM refund_lines rl WHERE rl.merchant_id = :merchant AND rl.customer_id = u.customer_id
    ) AS r
    CROSS JOIN LATERAL (
        SELECT array_agg(fv.product_id) AS products, array_agg(fv.category) AS categories,
               array_agg(fv.favorited_at) AS favorited
        FROM favorites fv WHERE fv.merchant_id = :merchant AND fv.customer_id = u.customer_id
    ) AS f
    CROSS JOIN LATERAL (
        SELECT count(*) AS made,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM orders o
                   WHERE o.merchant_id = rx.merchant_id AND o.customer_id = rx.invitee_id)) AS bought
        FROM referrals rx WHERE rx.merchant_id = :merchant AND rx.inviter_id = u.customer_id
    ) AS rf
    """
)


# A batch's membership changes and the events announcing them, in one statement: the memberships are
# deleted/inserted and the outbox rows built from the same rows, so a membership and its event cannot
# part. Envelopes are assembled by Postgres rather than one pydantic model per event: the events are
# ours, their fields are typed columns here, and the relay publishes `payload::text`. They are
# concatenated as text (every string through `to_json`, the batch's constant fields rendered by Python)
# and cast to json once: json_build_object looks up each argument's output function on every row, ~6.8
# µs an envelope against ~3.1 µs (100,000 rows, Postgres 18). A NULL part makes the payload NULL, which
# the outbox refuses: the batch fails rather than announcing a field as null. The thousands of
# (key, customer) pairs travel as JSON arrays, one parameter each: binding them as SQL arrays costs the
# driver a type check per element.
# Entries are plain inserts, not ON CONFLICT DO NOTHING (which costs a second probe of the primary key
# per row, ~40% of the insert): they were computed against the memberships read under the customers'
# row locks, so a conflict would mean that view was stale; skipping the row would still emit its event,
# failing the batch has the runner retry it on fresh reads.
RECORD_CHANGES = text(
    """
    WITH change AS (
        -- ROWS FROM walks the three arrays in step (a join on their ordinality cost ~3.6 µs a row)
        SELECT CAST(z.id AS uuid) AS id, z.segment_key, z.customer_id, z.n,
               CASE WHEN z.n <= :exits THEN 'exited' ELSE 'entered' END AS kind
        FROM ROWS FROM (json_array_elements_text(CAST(:ids AS json)),
                        json_array_elements_text(CAST(:keys AS json)),
                        json_array_elements_text(CAST(:customers AS json)))
             WITH ORDINALITY AS z(id, segment_key, customer_id, n)
    ),
    stage AS (
        -- the customers also as an SQL array, for the index probe of `staged`
        SELECT CAST(s.id AS uuid) AS id, s.customer_id, s.old_stage, s.new_stage, s.n
        FROM ROWS FROM (json_array_elements_text(CAST(:stage_ids AS json)),
                        unnest(CAST(:stage_customers AS varchar[])),
                        json_array_elements_text(CAST(:old_stages AS json)),
                        json_array_elements_text(CAST(:new_stages AS json)))
             WITH ORDINALITY AS s(id, customer_id, old_stage, new_stage, n)
    ),
    exited AS (
        DELETE FROM segment_memberships m USING change c
        WHERE c.kind = 'exited' AND m.merchant_id = :merchant AND m.segment_key = c.segment_key
          AND m.customer_id = c.customer_id
    ),
    entered AS (
        INSERT INTO segment_memberships (merchant_id, segment_key, customer_id, entered_at)
        SELECT :merchant, segment_key, customer_id, :at FROM change WHERE kind = 'entered'
    ),
    -- Probed through the primary key: the planner cannot size a CTE scan.
    staged AS (
        UPDATE customers u SET lifecycle = s.new_stage FROM stage s
        WHERE u.merchant_id = :merchant AND u.customer_id = s.customer_id
          AND u.customer_id = ANY(CAST(:stage_customers AS varchar[]))
    ),
    event AS (
        SELECT c.id, c.customer_id, c.n,
               CASE c.kind WHEN 'exited' THEN CAST(:exited_type AS text) ELSE CAST(:entered_type AS text) END
                   AS type,
               '{"segment_id":"' || (CAST(:segment_ids AS jsonb) ->> c.segment_key)
                   || '","segment_key":' || to_json(c.segment_key)::text
                   || ',"customer_id":' || to_json(c.customer_id)::text
                   || ',"' || c.kind || '_at":' || CAST(:at_literal AS text) || '}' AS data
        FROM change c
        UNION ALL
        SELECT s.id, s.customer_id, :exits + :entries + s.n, CAST(:lifecycle_type AS text),
               '{"customer_id":' || to_json(s.customer_id)::text
                   || ',"old_stage":' || to_json(s.old_stage)::text
                   || ',"new_stage":' || to_json(s.new_stage)::text
                   || ',"changed_at":' || CAST(:at_literal AS text) || '}'
        FROM stage s
    )
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, headers)
    SELECT e.id, CAST(:topic AS text), CAST(:merchant AS text) || ':' || e.customer_id, e.type,
           CAST('{"id":"' || e.id || '","type":' || to_json(e.type)::text || CAST(:envelope_fields AS text)
                || ',"subject":' || to_json(e.customer_id)::text || ',"data":' || e.data || '}' AS json),
           CAST(:headers AS json)
    FROM event e
    ORDER BY e.n
    """
)

SORT_IN_MEMORY = text("SET LOCAL work_mem = '64MB'")

# A new version for the customers whose facts a transaction changed, taken just before it commits: one
# value of the sequence for all of them (the initplan runs once), as a version only has to differ from
# every version the row had before, not from other customers'. Their rows are locked by the facts load
# already; should one not be, the rows are locked in customer order first, as everywhere.
RENEW_LOCKED_FACTS_VERSIONS = text(
    """
    WITH version AS MATERIALIZED (SELECT nextval('facts_versions') AS v),
    renewed AS (
        UPDATE customers SET facts_version = (SELECT v FROM version)
        WHERE merchant_id = :merchant AND customer_id = ANY(CAST(:ids AS varchar[]))
    )
    SELECT v FROM version
    """
)
RENEW_FACTS_VERSIONS = text(
    """
    WITH version AS MATERIALIZED (SELECT nextval('facts_versions') AS v),
    locked AS MATERIALIZED (
        SELECT customer_id FROM customers
        WHERE merchant_id = :merchant AND customer_id = ANY(CAST(:ids AS varchar[]))
        ORDER BY customer_id
        FOR UPDATE
    ),
    renewed AS (
        UPDATE customers c SET facts_version = (SELECT v FROM version)
        FROM locked l
        WHERE c.merchant_id = :merchant AND c.customer_id = l.customer_id
    )
    SELECT v FROM version
    """
)
RENEW_MEMBERSHIP_GENERATION = text(
    """
    INSERT INTO membership_generations AS g (merchant_id, generation)
    VALUES (:merchant, nextval('facts_versions'))
    ON CONFLICT (merchant_id) DO UPDATE SET generation = excluded.generation
    """
)
NO_HISTORY = History((), (), (), frozenset(), None, 0, 0, frozenset())


def stored_time(at: datetime) -> datetime:
    """A time as a `timestamptz` column gives it back: a time without an offset is read as the process's
    local time, as `astimezone` (and the driver) read it; an aware one compares the same at any offset."""
    return at if at.tzinfo is not None else at.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_micros(at: datetime) -> int:
    """A time as whole microseconds since the epoch, as statements take times in JSON (see INSERT_ORDERS);
    exact, where a float of seconds is not."""
    return (stored_time(at) - _EPOCH) // _MICROSECOND


class FactsRepository:
    """The facts tables of one transaction. With a `cache`, it also keeps the rule cache.py relies on:
    every customer whose history this transaction changes gets a new `facts_version` before the commit
    (`renew_versions`), and the facts it ends with are handed to the cache after it (`publish`)."""

    def __init__(self, session: AsyncSession, cache: FactsCache | None = None) -> None:
        self.session = session
        self._cache = cache
        # Facts as of this transaction, of the customers it loaded for re-evaluation.
        self._current: dict[CustomerKey, Entry] = {}
        # Since a customer's last load here: the order lines this transaction added (which a cached
        # history lacks), and customers whose history it changed otherwise (read again in full).
        self._added_lines: dict[CustomerKey, list[PurchasedLine]] = {}
        self._rewritten: set[CustomerKey] = set()
        # Customers this transaction created: nothing about them is committed, so there is nothing to read.
        self._created: set[CustomerKey] = set()
        # Every customer whose history this transaction changed: they need a new version.
        self._changed: set[CustomerKey] = set()
        self._locked: set[CustomerKey] = set()
        # Merchants whose memberships this transaction wrote outside an evaluation: each needs a generation.
        self._memberships_rewritten: set[str] = set()

    def _rewrote(self, merchant: str, customers: Iterable[str]) -> None:
        keys = {(merchant, c) for c in customers}
        self._rewritten |= keys
        self._changed |= keys

    def _rewrote_rows(self, rows: Iterable[Mapping[str, Any]], customer: str = "customer_id") -> None:
        for row in rows:
            key = (row["merchant"], row[customer])
            self._rewritten.add(key)
            self._changed.add(key)

    async def _many(self, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(statement, list(rows))

    async def ensure_customers(self, merchant: str, seen: Iterable[tuple[str, datetime]]) -> set[str]:
        """Create the customers not known yet, each first seen at the time of its event (the earliest of
        several); returns those it created."""
        pairs = list(seen)
        if not pairs:
            return set()
        result = await self.session.execute(
            ENSURE_CUSTOMERS,
            {
                "merchant": merchant,
                "ids": json.dumps([c for c, _ in pairs]),
                "ats": json.dumps([epoch_micros(at) for _, at in pairs]),
            },
        )
        created = {customer for customer, is_new in result if is_new}
        self._created.update((merchant, c) for c in created)
        return created

    async def add_orders(self, merchant: str, events: Sequence[OrderPaid]) -> None:
        """The orders and their lines; an order seen before (a replay, under any event id) adds nothing."""
        if not events:
            return
        await self.session.execute(
            INSERT_ORDERS,
            {
                "merchant": merchant,
                "order_ids": json.dumps([e.order_id for e in events]),
                "customer_ids": json.dumps([e.customer_id for e in events]),
                "paid_at": json.dumps([epoch_micros(e.paid_at) for e in events]),
                "totals": json.dumps([e.total_minor for e in events]),
                "channels": json.dumps([e.channel for e in events]),
            },
        )
        lines = [(e, line) for e in events for line in e.lines]
        inserted: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            INSERT_ORDER_LINES,
            {
                "merchant": merchant,
                "order_ids": json.dumps([e.order_id for e, _ in lines]),
                "line_ids": json.dumps([line.line_id for _, line in lines]),
                "customer_ids": json.dumps([e.customer_id for e, _ in lines]),
                "product_ids": json.dumps([line.product_id for _, line in lines]),
                "categories": json.dumps([line.category for _, line in lines]),
                "amounts": json.dumps([line.amount_minor for _, line in lines]),
                "paid_at": json.dumps([epoch_micros(e.paid_at) for e, _ in lines]),
            },
        )
        if inserted.rowcount == len(lines):
            # Every line is new: the facts kept of their customers take them as the database has them.
            added = self._added_lines
            for e, line in lines:
                added.setdefault((merchant, e.customer_id), []).append(
                    PurchasedLine(
                        e.order_id,
                        intern(line.product_id),
                        intern(line.category),
                        line.amount_minor,
                        stored_time(e.paid_at),
                    )
                )
            self._changed.update((merchant, e.customer_id) for e in events)
        else:
            # Some were known (a re-sent order, or a line twice in the batch): which ones, only the
            # database says, so these customers' facts are read again.
            self._rewrote(merchant, [e.customer_id for e in events])
        await self._many(
            ADOPT_ORDER_CHANNEL,
            [
                {"merchant": merchant, "customer_id": e.customer_id, "channel": e.channel}
                for e in events
                if e.channel is not None
            ],
        )

    async def customers_of_orders(self, merchant: str, order_ids: Iterable[str]) -> dict[str, str]:
        """The customer of each known order among these."""
        result = await self.session.execute(
            text(
                "SELECT order_id, customer_id FROM orders "
                "WHERE merchant_id = :merchant AND order_id = ANY(CAST(:ids AS varchar[]))"
            ),
            {"merchant": merchant, "ids": sorted(set(order_ids))},
        )
        return {row[0]: row[1] for row in result}

    async def add_refund_lines(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(INSERT_REFUND_LINE, rows)
        self._rewrote_rows(rows)

    async def update_profiles(self, merchant: str, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Apply the updates; returns the customers whose profile they changed."""
        if not rows:
            return set()
        changed = await self.session.execute(
            UPDATE_PROFILES,
            {
                "merchant": merchant,
                "customer_ids": [r["customer_id"] for r in rows],
                "genders": [r["gender"] for r in rows],
                "birth_years": [r["birth_year"] for r in rows],
                "cities": [r["city"] for r in rows],
                "sizes": [r["size"] for r in rows],
                "channels": [r["channel"] for r in rows],
            },
        )
        return set(changed.scalars())

    async def add_favorites(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(INSERT_FAVORITE, rows)
        self._rewrote_rows(rows)

    async def join_groups(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(JOIN_GROUP, rows)
        self._rewrote_rows(rows)

    async def leave_groups(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(LEAVE_GROUP, rows)
        self._rewrote_rows(rows)

    async def add_activities(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(INSERT_ACTIVITY, rows)
        # only activity in a group is a fact (a fan's last activity); a vote is not
        self._rewrote_rows(row for row in rows if row["group_id"] is not None)

    async def add_referrals(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(INSERT_REFERRAL, rows)
        self._rewrote_rows(rows, customer="inviter_id")

    async def update_tiers(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._many(UPDATE_TIER, rows)

    async def inviters_of_buyers(self, merchant: str, invitee_ids: Sequence[str]) -> list[str]:
        """The inviters of customers who just bought: their referral sales may have changed, so their
        facts count as changed."""
        result = await self.session.execute(INVITERS_OF, {"merchant": merchant, "ids": list(invitee_ids)})
        inviters = [row[0] for row in result]
        self._rewrote(merchant, inviters)
        return inviters

    async def load(
        self, merchant: str, customer_ids: Sequence[str], *, lock: bool = True
    ) -> dict[str, CustomerFacts]:
        """Facts of the given customers (that exist), their rows locked for this transaction unless
        `lock=False` (to show them, not to re-evaluate them: read in full, neither taken from the cache
        nor given to it)."""
        params = {"merchant": merchant, "ids": sorted(set(customer_ids))}
        rows = await self.session.execute(LOAD_CUSTOMERS if lock else VIEW_CUSTOMERS, params)
        columns = list(rows.keys())[:-2]  # customer_id first; zip is ~5× cheaper than dict(row._mapping)
        profiles: dict[str, dict[str, Any]] = {}
        seen: dict[str, tuple[int, int | None]] = {}
        for *profile, version, generation in rows:
            profiles[profile[0]] = dict(zip(columns, profile, strict=True))
            seen[profile[0]] = (version, generation)
        if not profiles:
            return {}
        histories: dict[str, History] = {}
        if lock:
            for customer, (version, generation) in seen.items():
                history = self._history_at(merchant, customer, version, generation)
                if history is not None:
                    histories[customer] = history
        unread = [c for c in profiles if c not in histories]
        if unread:
            histories.update(await self._read_histories(merchant, unread))
        if lock:
            FACTS_LOADED.labels("kept").inc(len(profiles) - len(unread))
            FACTS_LOADED.labels("read").inc(len(unread))
            for customer, (version, generation) in seen.items():
                key = (merchant, customer)
                self._locked.add(key)
                self._current[key] = Entry(version, generation, histories[customer])
                self._added_lines.pop(key, None)
                self._rewritten.discard(key)
                self._created.discard(key)
        facts = {}
        for customer, fields in profiles.items():
            fields.update(zip(History._fields, histories[customer], strict=True))
            facts[customer] = CustomerFacts.from_fields(fields)
        return facts

    def _history_at(
        self, merchant: str, customer: str, version: int, generation: int | None
    ) -> History | None:
        """The customer's history as this transaction has it, without reading it, if that is known: the
        one loaded earlier in this transaction or kept by the cache at the row's version, with the order
        lines added since. None if it must be read."""
        key = (merchant, customer)
        if key in self._rewritten:
            return None
        if key in self._created:
            history: History | None = NO_HISTORY
        else:
            entry = self._current.get(key)
            if entry is not None and entry.version == version and entry.generation == generation:
                history = entry.history
            else:
                history = self._cache.get(key, version, generation) if self._cache is not None else None
        added = self._added_lines.get(key)
        if history is not None and added:
            history = History(history.lines + tuple(added), *history[1:])  # ~4× cheaper than _replace
        return history

    async def _read_histories(self, merchant: str, customers: list[str]) -> dict[str, History]:
        """Read in full. Products, categories and segment keys are interned: the cache keeps thousands of
        customers' facts, which then share one string per value instead of holding one each."""
        histories: dict[str, History] = {}
        for (
            customer_id, segment_keys,
            orders, products, categories, amounts, paid,
            refunds, refunded_orders, refunded_products, refunded_categories, refunded_amounts, refunded_at,
            complaints,
            favorite_products, favorite_categories, favorited_at,
            active_groups, last_group_activity_at, made, bought,
        ) in await self.session.execute(LOAD_FACTS, {"merchant": merchant, "ids": customers}):  # fmt: skip
            histories[customer_id] = History(
                lines=tuple(
                    map(PurchasedLine, orders, map(intern, products), map(intern, categories), amounts, paid)
                )
                if orders
                else (),
                refunds=tuple(
                    map(
                        RefundedLine,
                        refunds,
                        refunded_orders,
                        refunded_products,
                        refunded_categories,
                        refunded_amounts,
                        refunded_at,
                        complaints,
                    )
                )
                if refunds
                else (),
                favorites=tuple(map(Favorite, favorite_products, favorite_categories, favorited_at))
                if favorite_products
                else (),
                active_group_ids=frozenset(active_groups),
                last_group_activity_at=last_group_activity_at,
                referrals_made=made,
                referred_buyers=bought,
                segments=frozenset(map(intern, segment_keys)),
            )
        return histories

    async def renew_versions(self) -> None:
        """Give every customer whose history this transaction changed a new version, and every merchant
        whose memberships it rewrote outside an evaluation a new generation; call just before the commit.
        The facts kept of a customer written after their last load are not known: dropped."""
        for key in self._rewritten | self._added_lines.keys() | self._created:
            self._current.pop(key, None)
        for merchant in sorted(self._memberships_rewritten):
            await self.session.execute(RENEW_MEMBERSHIP_GENERATION, {"merchant": merchant})
        if self._memberships_rewritten:
            self._current = {
                k: e for k, e in self._current.items() if k[0] not in self._memberships_rewritten
            }
            self._memberships_rewritten.clear()
        by_merchant: dict[str, list[str]] = {}
        for merchant, customer in sorted(self._changed):
            by_merchant.setdefault(merchant, []).append(customer)
        for merchant, customers in by_merchant.items():
            locked = all((merchant, c) in self._locked for c in customers)
            version = (
                await self.session.execute(
                    RENEW_LOCKED_FACTS_VERSIONS if locked else RENEW_FACTS_VERSIONS,
                    {"merchant": merchant, "ids": customers},
                )
            ).scalar_one()
            current = self._current
            for customer in customers:
                entry = current.get((merchant, customer))
                if entry is not None:  # loaded, so its row exists and now has this version
                    current[(merchant, customer)] = Entry(version, entry.generation, entry.history)
        self._changed.clear()

    def publish(self) -> None:
        """Hand the facts this transaction ended with to the cache; call once it committed."""
        if self._cache is not None:
            self._cache.store(self._current)
        self._current = {}

    async def record_changes(
        self,
        merchant: str,
        exits: Sequence[tuple[str, str]],
        entries: Sequence[tuple[str, str]],
        stages: Sequence[tuple[str, str, str]],
        *,
        segment_ids: Mapping[str, str],
        at: datetime,
        at_json: str,
        envelope: Mapping[str, str],
        members: Mapping[str, AbstractSet[str]] | None = None,
    ) -> None:
        """`exits`/`entries` are (segment_key, customer_id), `stages` (customer_id, old, new), in the
        order their events go out; `segment_ids` maps every key named to its id; `envelope` holds the
        constant parts of the outbox rows (topic, source, time, headers, the three event types);
        `members`, each changed customer's memberships after, if known."""
        pairs = [*exits, *entries]
        if not pairs and not stages:
            return
        self._change_memberships(merchant, {customer for _, customer in pairs}, members or {})
        # The outbox rows are sorted by their event order before insertion; they outgrow the default
        # work_mem and would spill to disk.
        await self.session.execute(SORT_IN_MEMORY)
        await self.session.execute(
            RECORD_CHANGES,
            {
                **{
                    k: envelope[k]
                    for k in ("topic", "headers", "exited_type", "entered_type", "lifecycle_type")
                },
                "merchant": merchant,
                "at": at,
                "at_literal": json.dumps(at_json),
                # the envelope's fields between "type" and "subject", as JSON renders them
                "envelope_fields": ","
                + json.dumps(
                    {"source": envelope["source"], "time": envelope["time"], "merchant_id": merchant},
                    ensure_ascii=False,
                )[1:-1],
                "exits": len(exits),
                "entries": len(entries),
                "ids": json.dumps([str(uuid7()) for _ in pairs]),
                "keys": json.dumps([key for key, _ in pairs]),
                "customers": json.dumps([customer for _, customer in pairs]),
                "segment_ids": json.dumps(segment_ids),
                "stage_ids": json.dumps([str(uuid7()) for _ in stages]),
                "stage_customers": [customer for customer, _, _ in stages],
                "old_stages": json.dumps([old for _, old, _ in stages]),
                "new_stages": json.dumps([new for _, _, new in stages]),
            },
        )

    def _change_memberships(
        self, merchant: str, changed: Iterable[str], members: Mapping[str, AbstractSet[str]]
    ) -> None:
        """The kept facts of customers whose memberships changed take the memberships after, or are
        dropped where those are not given."""
        for customer in changed:
            key = (merchant, customer)
            self._changed.add(key)
            entry = self._current.get(key)
            if entry is None:
                continue
            after = members.get(customer)
            if after is None:
                del self._current[key]
            else:
                self._current[key] = Entry(
                    entry.version, entry.generation, History(*entry.history[:-1], after)
                )

    async def enter_segments(self, merchant: str, pairs: Sequence[tuple[str, str]], at: datetime) -> None:
        """`pairs` are (segment_key, customer_id)."""
        if pairs:
            self._memberships_rewritten.add(merchant)
            await self.session.execute(
                text(
                    """
                    INSERT INTO segment_memberships (merchant_id, segment_key, customer_id, entered_at)
                    SELECT :merchant, p.k, p.c, :at
                    FROM unnest(CAST(:keys AS varchar[]), CAST(:customers AS varchar[])) AS p(k, c)
                    ON CONFLICT DO NOTHING
                    """
                ),
                {
                    "merchant": merchant,
                    "keys": [k for k, _ in pairs],
                    "customers": [c for _, c in pairs],
                    "at": at,
                },
            )

    async def exit_segments(self, merchant: str, pairs: Sequence[tuple[str, str]]) -> None:
        if pairs:
            self._memberships_rewritten.add(merchant)
            await self.session.execute(
                text(
                    """
                    DELETE FROM segment_memberships m
                    USING unnest(CAST(:keys AS varchar[]), CAST(:customers AS varchar[])) AS p(k, c)
                    WHERE m.merchant_id = :merchant AND m.segment_key = p.k AND m.customer_id = p.c
                    """
                ),
                {"merchant": merchant, "keys": [k for k, _ in pairs], "customers": [c for _, c in pairs]},
            )
