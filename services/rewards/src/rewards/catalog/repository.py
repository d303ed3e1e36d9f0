"""Catalog rewards, always scoped to the merchant."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import catalog_rewards


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, merchant_id: str, reward_id: UUID, fields: dict[str, Any]) -> dict[str, Any]:
        row = await self.session.execute(
            insert(catalog_rewards)
            .values(id=reward_id, merchant_id=merchant_id, **fields)
            .returning(*catalog_rewards.c)
        )
        return dict(row.one()._mapping)

    async def get(self, merchant_id: str, reward_id: UUID) -> dict[str, Any] | None:
        row = await self.session.execute(
            select(catalog_rewards).where(
                catalog_rewards.c.merchant_id == merchant_id, catalog_rewards.c.id == reward_id
            )
        )
        found = row.first()
        return dict(found._mapping) if found else None

    async def list(self, merchant_id: str, *, active_only: bool) -> list[dict[str, Any]]:
        query = select(catalog_rewards).where(catalog_rewards.c.merchant_id == merchant_id)
        if active_only:
            query = query.where(catalog_rewards.c.active)
        rows = await self.session.execute(query.order_by(catalog_rewards.c.created_at))
        return [dict(r._mapping) for r in rows]

    async def change(
        self, merchant_id: str, reward_id: UUID, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        row = await self.session.execute(
            update(catalog_rewards)
            .where(catalog_rewards.c.merchant_id == merchant_id, catalog_rewards.c.id == reward_id)
            .values(**fields, updated_at=func.now())
            .returning(*catalog_rewards.c)
        )
        found = row.first()
        return dict(found._mapping) if found else None

    async def take_stock(self, merchant_id: str, reward_id: UUID, quantity: int, *, unlimited: bool) -> bool:
        """Decrement stock if enough is left; the row stays locked until commit, and a concurrent taker
        re-checks the condition after waiting, so stock never goes below zero. Unlimited stock is not
        touched, so redeeming it locks no shared row."""
        if unlimited:
            return True
        row = await self.session.execute(
            update(catalog_rewards)
            .where(
                catalog_rewards.c.merchant_id == merchant_id,
                catalog_rewards.c.id == reward_id,
                (catalog_rewards.c.stock.is_(None)) | (catalog_rewards.c.stock >= quantity),
            )
            .values(stock=catalog_rewards.c.stock - quantity)
            .returning(catalog_rewards.c.id)
        )
        return row.first() is not None

    async def return_stock(self, merchant_id: str, reward_id: UUID, quantity: int) -> None:
        await self.session.execute(
            update(catalog_rewards)
            .where(
                catalog_rewards.c.merchant_id == merchant_id,
                catalog_rewards.c.id == reward_id,
                catalog_rewards.c.stock.is_not(None),
            )
            .values(stock=catalog_rewards.c.stock + quantity)
        )
