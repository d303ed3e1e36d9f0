"""The content unit of work: repositories on one session, and events that also feed webhook deliveries."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meadow_contracts import Envelope, Event
from meadow_runtime.app import unit_of_work_dependency
from meadow_runtime.uow import UnitOfWork

from .audiences.repository import AudienceRepository
from .comments.repository import CommentRepository
from .lotteries.repository import LotteryRepository
from .posts.repository import PostRepository
from .publisher.repository import PublisherRepository
from .webhooks.repository import WebhookRepository


class ContentUnitOfWork(UnitOfWork):
    audiences: AudienceRepository
    posts: PostRepository
    comments: CommentRepository
    lotteries: LotteryRepository
    webhooks: WebhookRepository
    publisher: PublisherRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], source: str) -> None:
        super().__init__(session_factory, source)
        self.source = source

    def on_enter(self) -> None:
        self.audiences = AudienceRepository(self.session)
        self.posts = PostRepository(self.session)
        self.comments = CommentRepository(self.session)
        self.lotteries = LotteryRepository(self.session)
        self.webhooks = WebhookRepository(self.session)
        self.publisher = PublisherRepository(self.session)
        self._emitted: list[Envelope] = []

    def emit(self, event: Event, *, merchant_id: str, subject: UUID | str) -> Envelope:
        """Append the event to the outbox; at commit it is also queued for the merchant's webhooks."""
        envelope = self.outbox.add(event, merchant_id=merchant_id, subject=str(subject))
        self._emitted.append(envelope)
        return envelope

    async def flush(self) -> None:
        await self._queue_webhook_deliveries()
        await super().flush()

    async def commit(self) -> None:
        await self._queue_webhook_deliveries()
        await super().commit()

    async def rollback(self) -> None:
        self._emitted.clear()
        await super().rollback()

    async def _queue_webhook_deliveries(self) -> None:
        if self._emitted:
            emitted, self._emitted = self._emitted, []
            await self.webhooks.queue_deliveries(emitted)


ContentUoW = Annotated[ContentUnitOfWork, Depends(unit_of_work_dependency(ContentUnitOfWork))]
