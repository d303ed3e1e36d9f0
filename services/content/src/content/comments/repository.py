"""Comments, check-ins, buyer shows, questions, poll votes and likes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import comments, likes, votes


class CommentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, values: dict[str, Any]) -> Row[Any]:
        row: Row[Any] = (
            await self._session.execute(insert(comments).values(**values).returning(comments))
        ).one()
        return row

    async def get(self, merchant_id: str, comment_id: UUID) -> Row[Any] | None:
        query = select(comments).where(comments.c.merchant_id == merchant_id, comments.c.id == comment_id)
        return (await self._session.execute(query)).first()

    async def mark(self, merchant_id: str, comment_id: UUID, values: dict[str, Any]) -> Row[Any] | None:
        statement = (
            update(comments)
            .where(comments.c.merchant_id == merchant_id, comments.c.id == comment_id)
            .values(**values)
            .returning(comments)
        )
        found: Row[Any] | None = (await self._session.execute(statement)).first()
        return found

    async def for_post(
        self, merchant_id: str, post_id: UUID, *, include_hidden: bool, limit: int
    ) -> Sequence[Row[Any]]:
        query = select(comments).where(comments.c.merchant_id == merchant_id, comments.c.post_id == post_id)
        if not include_hidden:
            query = query.where(comments.c.hidden.is_(False))
        return (await self._session.execute(query.order_by(comments.c.created_at).limit(limit))).all()

    async def check_ins(
        self, merchant_id: str, post_id: UUID, group_id: UUID | None, since: datetime, until: datetime
    ) -> Sequence[Row[Any]]:
        """Members' visible check-ins on the post in [since, until)."""
        query = select(comments).where(
            comments.c.merchant_id == merchant_id,
            comments.c.post_id == post_id,
            comments.c.kind == "check_in",
            comments.c.by_staff.is_(False),
            comments.c.hidden.is_(False),
            comments.c.created_at >= since,
            comments.c.created_at < until,
        )
        if group_id is not None:
            query = query.where(comments.c.group_id == group_id)
        return (await self._session.execute(query)).all()

    async def add_vote(
        self, merchant_id: str, post_id: UUID, customer_id: str, option_id: str
    ) -> datetime | None:
        """Record the vote unless the member already voted on this poll; returns when it was cast."""
        statement = (
            pg_insert(votes)
            .values(merchant_id=merchant_id, post_id=post_id, customer_id=customer_id, option_id=option_id)
            .on_conflict_do_nothing()
            .returning(votes.c.cast_at)
        )
        cast_at: datetime | None = await self._session.scalar(statement)
        return cast_at

    async def add_like(
        self, merchant_id: str, post_id: UUID, customer_id: str, group_id: UUID | None
    ) -> datetime | None:
        """Record the like unless the member already liked the post; returns when it was made."""
        statement = (
            pg_insert(likes)
            .values(merchant_id=merchant_id, post_id=post_id, customer_id=customer_id, group_id=group_id)
            .on_conflict_do_nothing()
            .returning(likes.c.liked_at)
        )
        liked_at: datetime | None = await self._session.scalar(statement)
        return liked_at

    async def like_of(self, merchant_id: str, post_id: UUID, customer_id: str) -> datetime | None:
        liked_at: datetime | None = await self._session.scalar(
            select(likes.c.liked_at).where(
                likes.c.merchant_id == merchant_id,
                likes.c.post_id == post_id,
                likes.c.customer_id == customer_id,
            )
        )
        return liked_at

    async def like_count(self, merchant_id: str, post_id: UUID) -> int:
        count: int = (
            await self._session.scalar(
                select(func.count())
                .select_from(likes)
                .where(likes.c.merchant_id == merchant_id, likes.c.post_id == post_id)
            )
            or 0
        )
        return count

    async def vote_counts(self, merchant_id: str, post_id: UUID) -> dict[str, int]:
        rows = await self._session.execute(
            select(votes.c.option_id, func.count())
            .where(votes.c.merchant_id == merchant_id, votes.c.post_id == post_id)
            .group_by(votes.c.option_id)
        )
        return {option: int(count) for option, count in rows}

    async def vote_of(self, merchant_id: str, post_id: UUID, customer_id: str) -> str | None:
        found: str | None = await self._session.scalar(
            select(votes.c.option_id).where(
                votes.c.merchant_id == merchant_id,
                votes.c.post_id == post_id,
                votes.c.customer_id == customer_id,
            )
        )
        return found
