"""The merchant's blacklist of customers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class BlacklistEntry:
    customer_id: str
    blocked_by: str
    reason: str | None
    blocked_at: datetime


class BlacklistRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def contains(self, merchant_id: str, customer_id: str) -> bool:
        found = await self._session.execute(
            text("SELECT 1 FROM blacklist WHERE merchant_id = :merchant AND customer_id = :customer"),
            {"merchant": merchant_id, "customer": customer_id},
        )
        return found.first() is not None

    async def add(
        self, merchant_id: str, customer_id: str, *, by: str, reason: str | None, at: datetime
    ) -> bool:
        """True if newly blocked; False if the customer was already on the list."""
        added = await self._session.execute(
            text(
                "INSERT INTO blacklist (merchant_id, customer_id, blocked_by, reason, blocked_at) "
                "VALUES (:merchant, :customer, :by, :reason, :at) ON CONFLICT DO NOTHING RETURNING 1"
            ),
            {"merchant": merchant_id, "customer": customer_id, "by": by, "reason": reason, "at": at},
        )
        return added.first() is not None

    async def remove(self, merchant_id: str, customer_id: str) -> BlacklistEntry | None:
        row = (
            await self._session.execute(
                text(
                    "DELETE FROM blacklist WHERE merchant_id = :merchant AND customer_id = :customer "
                    "RETURNING customer_id, blocked_by, reason, blocked_at"
                ),
                {"merchant": merchant_id, "customer": customer_id},
            )
        ).first()
        return BlacklistEntry(row.customer_id, row.blocked_by, row.reason, row.blocked_at) if row else None

    async def page(
        self, merchant_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[BlacklistEntry]:
        params: dict[str, object] = {"merchant": merchant_id, "limit": limit}
        keyset = ""
        if after is not None:
            keyset = "AND (blocked_at, customer_id) > (:after_at, :after_id)"
            params["after_at"], params["after_id"] = after
        rows = await self._session.execute(
            text(
                "SELECT customer_id, blocked_by, reason, blocked_at FROM blacklist "
                "WHERE merchant_id = :merchant "
                f"{keyset} ORDER BY blocked_at, customer_id LIMIT :limit"
            ),
            params,
        )
        return [BlacklistEntry(r.customer_id, r.blocked_by, r.reason, r.blocked_at) for r in rows]
