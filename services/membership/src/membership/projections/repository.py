"""Local projections of other services' facts: segment membership and tier rank, per customer.

Each row keeps the time of the fact it holds; an older or equal fact (late, replayed, duplicated) never
overwrites a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.join_rules import CustomerStanding


@dataclass(frozen=True)
class SegmentFact:
    is_member: bool
    as_of: datetime


UPSERT_SEGMENT = text(
    """
    INSERT INTO customer_segments AS cs (merchant_id, customer_id, segment_key, segment_id, is_member, as_of)
    VALUES (:merchant, :customer, :key, :segment_id, :is_member, :as_of)
    ON CONFLICT (merchant_id, customer_id, segment_key) DO UPDATE
        SET is_member = excluded.is_member, as_of = excluded.as_of, segment_id = excluded.segment_id
        WHERE cs.as_of < excluded.as_of
    RETURNING 1
    """
)

UPSERT_TIER = text(
    """
    INSERT INTO customer_tiers AS ct (merchant_id, customer_id, tier, tier_rank, as_of)
    VALUES (:merchant, :customer, :tier, :rank, :as_of)
    ON CONFLICT (merchant_id, customer_id) DO UPDATE
        SET tier = excluded.tier, tier_rank = excluded.tier_rank, as_of = excluded.as_of
        WHERE ct.as_of < excluded.as_of
    RETURNING 1
    """
)

STANDING = text(
    """
    SELECT ARRAY(SELECT segment_key FROM customer_segments
                 WHERE merchant_id = :merchant AND customer_id = :customer AND is_member) AS segments,
           COALESCE((SELECT tier_rank FROM customer_tiers
                     WHERE merchant_id = :merchant AND customer_id = :customer), 0)
               AS tier_rank
    """
)


class ProjectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def segment_fact(self, merchant_id: str, customer_id: str, segment_key: str) -> SegmentFact | None:
        row = (
            await self._session.execute(
                text(
                    "SELECT is_member, as_of FROM customer_segments WHERE merchant_id = :merchant "
                    "AND customer_id = :customer AND segment_key = :key FOR UPDATE"
                ),
                {"merchant": merchant_id, "customer": customer_id, "key": segment_key},
            )
        ).first()
        return SegmentFact(row.is_member, row.as_of) if row else None

    async def record_segment(
        self,
        merchant_id: str,
        customer_id: str,
        segment_key: str,
        segment_id: UUID,
        *,
        is_member: bool,
        as_of: datetime,
    ) -> bool:
        """Store the fact if it is newer than the one held; True if it was stored."""
        result = await self._session.execute(
            UPSERT_SEGMENT,
            {
                "merchant": merchant_id,
                "customer": customer_id,
                "key": segment_key,
                "segment_id": segment_id,
                "is_member": is_member,
                "as_of": as_of,
            },
        )
        return result.first() is not None

    async def record_tier(
        self, merchant_id: str, customer_id: str, tier: str | None, rank: int, as_of: datetime
    ) -> bool:
        result = await self._session.execute(
            UPSERT_TIER,
            {"merchant": merchant_id, "customer": customer_id, "tier": tier, "rank": rank, "as_of": as_of},
        )
        return result.first() is not None

    async def standing(self, merchant_id: str, customer_id: str) -> CustomerStanding:
        row = (
            await self._session.execute(STANDING, {"merchant": merchant_id, "customer": customer_id})
        ).one()
        return CustomerStanding(segments=frozenset(row.segments), tier_rank=row.tier_rank)
