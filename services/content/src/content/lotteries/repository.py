"""Lotteries in the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import lotteries, posts


class LotteryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self._session.execute(insert(lotteries).values(**values))

    async def exists_for_day(self, post_id: UUID, draw_date: Any) -> bool:
        found = await self._session.scalar(
            select(func.count()).where(lotteries.c.post_id == post_id, lotteries.c.draw_date == draw_date)
        )
        return bool(found)

    async def get(self, merchant_id: str, lottery_id: UUID) -> Row[Any] | None:
        query = select(lotteries).where(lotteries.c.merchant_id == merchant_id, lotteries.c.id == lottery_id)
        return (await self._session.execute(query)).first()

    async def list(self, merchant_id: str, limit: int) -> Sequence[Row[Any]]:
        query = (
            select(lotteries)
            .where(lotteries.c.merchant_id == merchant_id)
            .order_by(lotteries.c.draw_at.desc())
            .limit(limit)
        )
        return (await self._session.execute(query)).all()

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Row[Any]]:
        """Due lotteries, row-locked; another worker skips them until this transaction ends."""
        query = (
            select(lotteries)
            .where(lotteries.c.status == "scheduled", lotteries.c.draw_at <= now)
            .order_by(lotteries.c.draw_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self._session.execute(query)).all()

    async def record_draw(self, lottery_id: UUID, values: dict[str, Any]) -> None:
        await self._session.execute(
            update(lotteries).where(lotteries.c.id == lottery_id).values(status="drawn", **values)
        )

    async def check_in_calls_with_lotteries(self, published_since: datetime) -> Sequence[Row[Any]]:
        query = select(posts).where(
            posts.c.status == "published",
            posts.c.kind == "check_in_call",
            posts.c.published_at >= published_since,
            posts.c.details.has_key("check_in_lottery"),
        )
        return (await self._session.execute(query)).all()

    async def add_if_absent(self, values: dict[str, Any]) -> bool:
        statement = pg_insert(lotteries).values(**values).on_conflict_do_nothing().returning(lotteries.c.id)
        return (await self._session.execute(statement)).first() is not None
