"""Segment definitions and memberships as stored; every query is scoped to one merchant."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class StoredSegment:
    id: UUID
    merchant_id: str
    key: str
    name: str
    description: str
    rule: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


COLUMNS = "id, merchant_id, key, name, description, rule, version, created_at, updated_at"


def _lock_name(merchant: str) -> str:
    return f"meadow:segments:definitions:{merchant}"


class DefinitionsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_definitions_of(self, merchant: str) -> None:
        """Serialise changes to one merchant's definitions, with each other and with every evaluation
        under `all_of(share_lock=True)`, until this transaction ends. A check across several segments
        (no cycle of `in_segment`, no deletion of a segment in use) then sees every change committed
        before it, and a new segment's recompute sees every batch evaluated before it."""
        # An API request waits for the batches in flight (a second or so), not for ever: past the
        # timeout it answers 503 with Retry-After (SQLSTATE 55P03), nothing written.
        await self.session.execute(text("SET LOCAL lock_timeout = '10s'"))
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))"), {"lock": _lock_name(merchant)}
        )

    async def hold_definitions_shared(self, merchant: str) -> None:
        """The lock `all_of(share_lock=True)` takes, taken ahead of it (a transaction holding it already
        is granted it again at once)."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:lock, 0))"),
            {"lock": _lock_name(merchant)},
        )

    async def all_of(self, merchant: str, *, share_lock: bool = False) -> list[StoredSegment]:
        """`share_lock`: the definitions as evaluation uses them, held until this transaction ends. A
        change of them (which takes the lock exclusively) waits for the evaluations in flight, and they
        wait for it: memberships are never written by a rule that a recompute just replaced, and a
        segment created meanwhile is never missed by a batch its recompute could not see."""
        if share_lock:
            await self.hold_definitions_shared(merchant)
        result = await self.session.execute(
            text(f"SELECT {COLUMNS} FROM segments WHERE merchant_id = :m ORDER BY key"), {"m": merchant}
        )
        return [StoredSegment(**row._mapping) for row in result]

    async def for_merchants(self, merchants: Sequence[str]) -> dict[str, list[StoredSegment]]:
        result = await self.session.execute(
            text(f"SELECT {COLUMNS} FROM segments WHERE merchant_id = ANY(:ms)"), {"ms": list(merchants)}
        )
        by_merchant: dict[str, list[StoredSegment]] = {m: [] for m in merchants}
        for row in result:
            by_merchant[row.merchant_id].append(StoredSegment(**row._mapping))
        return by_merchant

    async def get(self, merchant: str, key: str) -> StoredSegment | None:
        result = await self.session.execute(
            text(f"SELECT {COLUMNS} FROM segments WHERE merchant_id = :m AND key = :k"),
            {"m": merchant, "k": key},
        )
        row = result.first()
        return StoredSegment(**row._mapping) if row else None

    async def add(self, segment: StoredSegment) -> bool:
        """False if the merchant already has a segment with this key."""
        result = await self.session.execute(
            text(
                """
                INSERT INTO segments (id, merchant_id, key, name, description, rule, version, created_at,
                    updated_at)
                VALUES (:id, :merchant_id, :key, :name, :description, CAST(:rule AS jsonb), :version,
                        :created_at, :updated_at)
                ON CONFLICT DO NOTHING RETURNING id
                """
            ),
            _params(segment),
        )
        return result.first() is not None

    async def replace(self, segment: StoredSegment) -> None:
        await self.session.execute(
            text(
                """
                UPDATE segments SET name = :name, description = :description, rule = CAST(:rule AS jsonb),
                       version = :version, updated_at = :updated_at
                WHERE merchant_id = :merchant_id AND id = :id
                """
            ),
            _params(segment),
        )

    async def remove(self, merchant: str, key: str) -> None:
        await self.session.execute(
            text("DELETE FROM segments WHERE merchant_id = :m AND key = :k"), {"m": merchant, "k": key}
        )

    async def members_of(self, merchant: str, key: str) -> set[str]:
        result = await self.session.execute(
            text("SELECT customer_id FROM segment_memberships WHERE merchant_id = :m AND segment_key = :k"),
            {"m": merchant, "k": key},
        )
        return {row[0] for row in result}

    async def members_page(
        self, merchant: str, key: str, after: str | None, limit: int
    ) -> list[tuple[str, datetime]]:
        result = await self.session.execute(
            text(
                """
                SELECT customer_id, entered_at FROM segment_memberships
                WHERE merchant_id = :m AND segment_key = :k
                    AND (CAST(:after AS varchar) IS NULL OR customer_id > :after)
                ORDER BY customer_id LIMIT :limit
                """
            ),
            {"m": merchant, "k": key, "after": after, "limit": limit},
        )
        return [(row.customer_id, row.entered_at) for row in result]

    async def count_members(self, merchant: str, key: str) -> int:
        result = await self.session.execute(
            text("SELECT count(*) FROM segment_memberships WHERE merchant_id = :m AND segment_key = :k"),
            {"m": merchant, "k": key},
        )
        return int(result.scalar_one())


def _params(segment: StoredSegment) -> dict[str, Any]:
    values = dict(segment.__dict__)
    values["rule"] = json.dumps(segment.rule)
    return values
