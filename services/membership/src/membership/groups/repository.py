"""Groups and their sub-groups in Postgres; every query names the merchant."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.join_rules import JoinRules
from ..models import groups, subgroups


@dataclass(frozen=True)
class GroupRecord:
    id: UUID
    merchant_id: str
    name: str
    purpose: str | None
    description: str | None
    rules: JoinRules
    welcome_perks: list[dict[str, Any]]
    subgroup_capacity: int
    max_subgroups: int
    product_ids: tuple[str, ...]
    categories: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True)
class SubgroupRecord:
    id: UUID
    group_id: UUID
    number: int
    capacity: int
    member_count: int


def group_from_row(row: RowMapping) -> GroupRecord:
    return GroupRecord(
        id=row["id"],
        merchant_id=row["merchant_id"],
        name=row["name"],
        purpose=row["purpose"],
        description=row["description"],
        rules=JoinRules(
            required_segments=frozenset(row["required_segments"]),
            required_mode=row["required_mode"],
            excluded_segments=frozenset(row["excluded_segments"]),
            min_tier_rank=row["min_tier_rank"],
        ),
        welcome_perks=list(row["welcome_perks"]),
        subgroup_capacity=row["subgroup_capacity"],
        max_subgroups=row["max_subgroups"],
        product_ids=tuple(row["product_ids"]),
        categories=tuple(row["categories"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        archived_at=row["archived_at"],
    )


def subgroup_from_row(row: RowMapping) -> SubgroupRecord:
    return SubgroupRecord(
        id=row["id"],
        group_id=row["group_id"],
        number=row["number"],
        capacity=row["capacity"],
        member_count=row["member_count"],
    )


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, values: dict[str, Any]) -> GroupRecord:
        row = (
            (await self._session.execute(insert(groups).values(**values).returning(groups))).mappings().one()
        )
        return group_from_row(row)

    async def get(self, merchant_id: str, group_id: UUID, *, for_update: bool = False) -> GroupRecord | None:
        query = select(groups).where(groups.c.merchant_id == merchant_id, groups.c.id == group_id)
        if for_update:
            query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE, as joins lock it
        row = (await self._session.execute(query)).mappings().first()
        return group_from_row(row) if row else None

    async def page(
        self, merchant_id: str, *, after: tuple[datetime, UUID] | None, limit: int, include_archived: bool
    ) -> list[GroupRecord]:
        query = select(groups).where(groups.c.merchant_id == merchant_id)
        if not include_archived:
            query = query.where(groups.c.archived_at.is_(None))
        if after is not None:
            query = query.where(
                text("(groups.created_at, groups.id) > (:after_at, :after_id)").bindparams(
                    after_at=after[0], after_id=after[1]
                )
            )
        query = query.order_by(groups.c.created_at, groups.c.id).limit(limit)
        return [group_from_row(r) for r in (await self._session.execute(query)).mappings()]

    async def active(self, merchant_id: str) -> list[GroupRecord]:
        query = (
            select(groups)
            .where(groups.c.merchant_id == merchant_id, groups.c.archived_at.is_(None))
            .order_by(groups.c.created_at, groups.c.id)
        )
        return [group_from_row(r) for r in (await self._session.execute(query)).mappings()]

    async def requiring_segment(self, merchant_id: str, segment_key: str) -> list[GroupRecord]:
        query = (
            select(groups)
            .where(
                groups.c.merchant_id == merchant_id,
                groups.c.archived_at.is_(None),
                groups.c.required_segments.any_() == segment_key,
            )
            .order_by(groups.c.created_at, groups.c.id)
        )
        return [group_from_row(r) for r in (await self._session.execute(query)).mappings()]

    async def targeting_product(
        self, merchant_id: str, product_id: str, category: str | None
    ) -> list[GroupRecord]:
        """Groups aimed at this product first, then those aimed at its category; oldest first within each."""
        rows = await self._session.execute(
            text(
                """
                SELECT *, (:product = ANY(product_ids)) AS by_product FROM groups
                WHERE merchant_id = :merchant AND archived_at IS NULL
                  AND (:product = ANY(product_ids)
                       OR (CAST(:category AS text) IS NOT NULL AND :category = ANY(categories)))
                ORDER BY by_product DESC, created_at, id
                """
            ),
            {"merchant": merchant_id, "product": product_id, "category": category},
        )
        return [group_from_row(r) for r in rows.mappings()]

    async def update(self, merchant_id: str, group_id: UUID, values: dict[str, Any]) -> GroupRecord:
        statement = (
            update(groups)
            .where(groups.c.merchant_id == merchant_id, groups.c.id == group_id)
            .values(**values, updated_at=text("now()"))
            .returning(groups)
        )
        return group_from_row((await self._session.execute(statement)).mappings().one())

    async def resize_subgroups(self, group_id: UUID, capacity: int) -> int:
        """Resize every sub-group that fits the new capacity; returns how many did (a join may race it)."""
        resized = await self._session.execute(
            update(subgroups)
            .where(subgroups.c.group_id == group_id, subgroups.c.member_count <= capacity)
            .values(capacity=capacity)
        )
        return int(resized.rowcount)  # type: ignore[attr-defined]

    async def subgroups_of(self, merchant_id: str, group_ids: list[UUID]) -> dict[UUID, list[SubgroupRecord]]:
        if not group_ids:
            return {}
        query = (
            select(subgroups)
            .where(subgroups.c.merchant_id == merchant_id, subgroups.c.group_id.in_(group_ids))
            .order_by(subgroups.c.group_id, subgroups.c.number)
        )
        found: dict[UUID, list[SubgroupRecord]] = defaultdict(list)
        for row in (await self._session.execute(query)).mappings():
            found[row["group_id"]].append(subgroup_from_row(row))
        return found
