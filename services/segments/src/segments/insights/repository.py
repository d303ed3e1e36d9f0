"""Queries behind the customer 360 view and the group metrics; every one scoped to the merchant."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Days are UTC calendar days. Members of a group on a day: joined before its end, not left before it.
# A membership is a row per stint (join to leave), and a customer's stints in a group never overlap.
GROUP_METRICS = text(
    """
    WITH days AS (
        SELECT CAST(d AS date) AS day,
               CAST(d AS timestamp) AT TIME ZONE 'UTC' AS starts,
               CAST(d AS timestamp) AT TIME ZONE 'UTC' + interval '1 day' AS ends
        FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
    ), members AS (
        SELECT customer_id, joined_at, left_at FROM group_members WHERE merchant_id = :m AND group_id = :g
    ), acts AS (
        SELECT customer_id, kind, occurred_at FROM activities WHERE merchant_id = :m AND group_id = :g
    )
    SELECT d.day,
        (SELECT count(*) FROM members x WHERE x.joined_at < d.ends
            AND (x.left_at IS NULL OR x.left_at >= d.ends))
            AS size,
        (SELECT count(DISTINCT x.customer_id) FROM members x WHERE x.joined_at >= d.starts
            AND x.joined_at < d.ends) AS new_members,
        (SELECT count(DISTINCT a.customer_id) FROM acts a WHERE a.occurred_at >= d.starts
            AND a.occurred_at < d.ends)
            AS active,
        (SELECT count(*) FROM acts a WHERE a.kind NOT IN ('check_in', 'like') AND a.occurred_at >= d.starts
            AND a.occurred_at < d.ends)
            AS comments,
        (SELECT count(*) FROM acts a WHERE a.kind = 'like' AND a.occurred_at >= d.starts
            AND a.occurred_at < d.ends)
            AS likes,
        (SELECT count(*) FROM acts a WHERE a.kind = 'check_in' AND a.occurred_at >= d.starts
            AND a.occurred_at < d.ends)
            AS check_ins,
        (SELECT count(DISTINCT a.customer_id) FROM acts a
          WHERE a.occurred_at >= d.starts AND a.occurred_at < d.ends
            AND EXISTS (SELECT 1 FROM acts b WHERE b.customer_id = a.customer_id
                        AND b.occurred_at >= d.ends
                            AND b.occurred_at < d.ends + interval '7 days')) AS revisited,
        mo.buyers AS member_buyers, mo.orders AS member_orders, mo.amount AS member_amount,
        no.buyers AS other_buyers, no.orders AS other_orders, no.amount AS other_amount,
        (SELECT count(*) FROM customers c WHERE c.merchant_id = :m AND c.first_seen_at < d.ends) AS customers
    FROM days d
    CROSS JOIN LATERAL (
        SELECT count(DISTINCT o.customer_id) AS buyers, count(*) AS orders, coalesce(sum(o.total_minor),
            0) AS amount
        FROM orders o
        WHERE o.merchant_id = :m AND o.paid_at >= d.starts AND o.paid_at < d.ends
          AND EXISTS (SELECT 1 FROM members x WHERE x.customer_id = o.customer_id AND x.joined_at <= o.paid_at
                      AND (x.left_at IS NULL OR x.left_at > o.paid_at))
    ) AS mo
    CROSS JOIN LATERAL (
        SELECT count(DISTINCT o.customer_id) AS buyers, count(*) AS orders, coalesce(sum(o.total_minor),
            0) AS amount
        FROM orders o
        WHERE o.merchant_id = :m AND o.paid_at >= d.starts AND o.paid_at < d.ends
          AND NOT EXISTS (SELECT 1 FROM members x WHERE x.customer_id = o.customer_id
              AND x.joined_at <= o.paid_at
                          AND (x.left_at IS NULL OR x.left_at > o.paid_at))
    ) AS no
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
