"""Queries behind the customer 360 view and the group metrics; every one scoped to the merchant."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Days are UTC calendar days, their bounds computed from dates (not by adding intervals to a timestamptz,
# which follows the session's time zone and its daylight-saving days). Each figure is one pass over the
# requested days' rows, through the index on its time or the group: the cost follows the window asked
# for, not the group's history.
# - Members of a day are those at its end: a stint joined before the end and not left by then. Buyers
#   are split by the same rule, so a member's conversion is members who bought over members, and a
#   customer who joins after buying counts with the members that day, as in the day's size.
# - A day's active members revisited if active in the group again within the 7 days after it; the
#   window's end is returned so an unfinished window can be reported as unknown.
# A membership is a row per stint (join to leave), and a customer's stints in a group never overlap.
GROUP_METRICS = text(
    """
    WITH days AS (
        SELECT day,
               CAST(day AS timestamp) AT TIME ZONE 'UTC' AS starts,
               CAST(day + 1 AS timestamp) AT TIME ZONE 'UTC' AS ends,
               CAST(day + 8 AS timestamp) AT TIME ZONE 'UTC' AS revisit_ends
        FROM (SELECT CAST(:first AS date) + i AS day
              FROM generate_series(0, CAST(:last AS date) - CAST(:first AS date)) AS i) AS numbered
    ), sizes AS (
        SELECT d.day,
               count(x.customer_id) FILTER (WHERE x.left_at IS NULL OR x.left_at >= d.ends) AS size,
               count(DISTINCT x.customer_id) FILTER (WHERE x.joined_at >= d.starts) AS new_members
        FROM days d
        LEFT JOIN group_members x ON x.merchant_id = :m AND x.group_id = :g AND x.joined_at < d.ends
        GROUP BY d.day
    ), acts AS (
        SELECT d.day, d.ends, d.revisit_ends, a.customer_id, a.kind
        FROM days d
        JOIN activities a ON a.merchant_id = :m AND a.group_id = :g
             AND a.occurred_at >= d.starts AND a.occurred_at < d.ends
    ), activity AS (
        SELECT day, count(DISTINCT customer_id) AS active,
               count(*) FILTER (WHERE kind NOT IN ('check_in', 'like')) AS comments,
               count(*) FILTER (WHERE kind = 'like') AS likes,
               count(*) FILTER (WHERE kind = 'check_in') AS check_ins
        FROM acts GROUP BY day
    ), revisits AS (
        SELECT p.day, count(*) AS revisited
        FROM (SELECT DISTINCT day, ends, revisit_ends, customer_id FROM acts) AS p
        WHERE EXISTS (
            SELECT 1 FROM activities b
            WHERE b.merchant_id = :m AND b.customer_id = p.customer_id AND b.group_id = :g
              AND b.occurred_at >= p.ends AND b.occurred_at < p.revisit_ends)
        GROUP BY p.day
    ), purchases AS (
        SELECT d.day, o.customer_id, o.total_minor,
               EXISTS (
                   SELECT 1 FROM group_members x
                   WHERE x.merchant_id = :m AND x.group_id = :g AND x.customer_id = o.customer_id
                     AND x.joined_at < d.ends AND (x.left_at IS NULL OR x.left_at >= d.ends)) AS by_member
        FROM days d
        JOIN orders o ON o.merchant_id = :m AND o.paid_at >= d.starts AND o.paid_at < d.ends
    ), sales AS (
        SELECT day,
               count(DISTINCT customer_id) FILTER (WHERE by_member) AS member_buyers,
               count(*) FILTER (WHERE by_member) AS member_orders,
               coalesce(sum(total_minor) FILTER (WHERE by_member), 0) AS member_amount,
               count(DISTINCT customer_id) FILTER (WHERE NOT by_member) AS other_buyers,
               count(*) FILTER (WHERE NOT by_member) AS other_orders,
               coalesce(sum(total_minor) FILTER (WHERE NOT by_member), 0) AS other_amount
        FROM purchases GROUP BY day
    ), first_seen AS (
        -- the merchant's customers by the day they were first seen, in one scan for every day asked
        SELECT CAST(c.first_seen_at AT TIME ZONE 'UTC' AS date) AS day, count(*) AS customers
        FROM customers c
        WHERE c.merchant_id = :m AND c.first_seen_at < (SELECT max(ends) FROM days)
        GROUP BY 1
    )
    SELECT d.day, d.revisit_ends, s.size, s.new_members,
           coalesce(a.active, 0) AS active, coalesce(a.comments, 0) AS comments,
           coalesce(a.likes, 0) AS likes, coalesce(a.check_ins, 0) AS check_ins,
           coalesce(r.revisited, 0) AS revisited,
           coalesce(sa.member_buyers, 0) AS member_buyers, coalesce(sa.member_orders, 0) AS member_orders,
           coalesce(sa.member_amount, 0) AS member_amount, coalesce(sa.other_buyers, 0) AS other_buyers,
           coalesce(sa.other_orders, 0) AS other_orders, coalesce(sa.other_amount, 0) AS other_amount,
           (SELECT coalesce(sum(f.customers), 0) FROM first_seen f WHERE f.day <= d.day) AS customers
    FROM days d
    JOIN sizes s ON s.day = d.day
    LEFT JOIN activity a ON a.day = d.day
    LEFT JOIN revisits r ON r.day = d.day
    LEFT JOIN sales sa ON sa.day = d.day
    ORDER BY d.day
    """
)


class InsightsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def group_days(self, merchant: str, group_id: str, first: date, last: date) -> list[dict[str, Any]]:
        result = await self.session.execute(
            GROUP_METRICS, {"m": merchant, "g": group_id, "first": first, "last": last}
        )
        return [dict(row._mapping) for row in result]

    async def customer_summary(self, merchant: str, customer_id: str) -> dict[str, Any] | None:
        result = await self.session.execute(
            text(
                """
                SELECT
                  (SELECT count(*) FROM orders o WHERE o.merchant_id = :m AND o.customer_id = :c) AS orders,
                  (SELECT coalesce(sum(o.total_minor), 0) FROM orders o WHERE o.merchant_id = :m
                      AND o.customer_id = :c)
                      AS spent,
                  (SELECT min(o.paid_at) FROM orders o WHERE o.merchant_id = :m
                      AND o.customer_id = :c) AS first_paid,
                  (SELECT max(o.paid_at) FROM orders o WHERE o.merchant_id = :m
                      AND o.customer_id = :c) AS last_paid,
                  (SELECT count(*) FROM activities a WHERE a.merchant_id = :m AND a.customer_id = :c
                      AND a.group_id IS NOT NULL
                          AND a.occurred_at >= now() - interval '30 days') AS activities_30d
                """
            ),
            {"m": merchant, "c": customer_id},
        )
        row = result.first()
        return dict(row._mapping) if row else None

    async def segment_names(self, merchant: str) -> dict[str, str]:
        result = await self.session.execute(
            text("SELECT key, name FROM segments WHERE merchant_id = :m"), {"m": merchant}
        )
        return {row.key: row.name for row in result}

    async def memberships(self, merchant: str, customer_id: str) -> list[tuple[str, Any]]:
        result = await self.session.execute(
            text(
                "SELECT segment_key, entered_at FROM segment_memberships "
                "WHERE merchant_id = :m AND customer_id = :c "
                "ORDER BY segment_key"
            ),
            {"m": merchant, "c": customer_id},
        )
        return [(row.segment_key, row.entered_at) for row in result]
