"""The content unit of work: repositories on one session, and events that also feed webhook deliveries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from meadow_contracts import Envelope, Event
from meadow_contracts.envelope import new_event_id, utc_now
from meadow_runtime.telemetry import current_trace_headers
from meadow_runtime.uow import UnitOfWork

from .audiences.repository import AudienceRepository
from .comments.repository import CommentRepository
from .lotteries.repository import LotteryRepository
from .posts.repository import PostRepository
from .webhooks.repository import WebhookRepository

BULK_OUTBOX_SQL = text(
    """
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, headers)
    SELECT u.id, :topic, u.key, :type, CAST(u.payload AS jsonb), CAST(:headers AS jsonb)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS text[]), CAST(:payloads AS text[])) AS u(id, key, payload)
    """
)


class ContentUnitOfWork(UnitOfWork):
    audiences: AudienceRepository
    posts: PostRepository
    comments: CommentRepository
    lotteries: LotteryRepository
    webhooks: WebhookRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], source: str) -> None:
        super().__init__(session_factory, source)
        self.source = source

    def on_enter(self) -> None:
        self.audiences = AudienceRepository(self.session)
        self.posts = PostRepository(self.session)
        self.comments = CommentRepository(self.session)
        self.lotteries = LotteryRepository(self.session)
        self.webhooks = WebhookRepository(self.session)
        self._emitted: list[Envelope] = []
        self._bulk_outbox: list[tuple[type[Event], list[Envelope]]] = []

    def emit(self, event: Event, *, merchant_id: str, subject: UUID | str) -> Envelope:
        """Append the event to the outbox; at commit it is also queued for the merchant's webhooks."""
        envelope = self.outbox.add(event, merchant_id=merchant_id, subject=str(subject))
        self._emitted.append(envelope)
        return envelope

    def emit_many(
        self, event_type: type[Event], events: Sequence[tuple[Event, str, UUID | str]]
    ) -> list[Envelope]:
        """`emit` for a large batch of one event type, as (event, merchant_id, subject).

        The publisher's hot path: one timestamp and one trace-header read per batch, and the rows go into
        the outbox in one `unnest` statement of JSON text (columns exactly as `Outbox` writes them)
        instead of one bound parameter set per row.
        """
        now = utc_now()
        envelopes = [
            Envelope(
                id=new_event_id(),
                type=event_type.event_type,
                source=self.source,
                time=now,
                merchant_id=merchant_id,
                subject=str(subject),
                data=event.model_dump(mode="json"),
            )
            for event, merchant_id, subject in events
        ]
        if envelopes:
            self._bulk_outbox.append((event_type, envelopes))
            self._emitted.extend(envelopes)
        return envelopes

    async def _write_bulk_outbox(self) -> None:
        if not self._bulk_outbox:
            return
        batches, self._bulk_outbox = self._bulk_outbox, []
        headers = json.dumps(current_trace_headers())
        for event_type, envelopes in batches:
            await self.session.execute(
                BULK_OUTBOX_SQL,
                {
                    "topic": event_type.topic,
                    "type": event_type.event_type,
                    "headers": headers,
                    "ids": [e.id for e in envelopes],
                    "keys": [e.key for e in envelopes],
                    "payloads": [e.model_dump_json() for e in envelopes],
                },
            )

    async def flush(self) -> None:
        await self._write_bulk_outbox()
        await self._queue_webhook_deliveries()
        await super().flush()

    async def commit(self) -> None:
        await self._write_bulk_outbox()
        await self._queue_webhook_deliveries()
        await super().commit()

    async def rollback(self) -> None:
        self._emitted.clear()
        self._bulk_outbox.clear()
        await super().rollback()

    async def _queue_webhook_deliveries(self) -> None:
        if self._emitted:
            emitted, self._emitted = self._emitted, []
            await self.webhooks.queue_deliveries(emitted)


async def _content_unit_of_work(request: Request) -> AsyncIterator[ContentUnitOfWork]:
    factory: Callable[[], ContentUnitOfWork] = request.app.state.uow_factory
    async with factory() as uow:
        yield uow


ContentUoW = Annotated[ContentUnitOfWork, Depends(_content_unit_of_work)]
