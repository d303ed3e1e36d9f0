"""Webhook endpoints, the delivery queue (an outbox of HTTP calls) and its attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from meadow_contracts import Envelope
from meadow_contracts.envelope import new_event_id

from ..models import webhook_attempts, webhook_deliveries, webhook_endpoints

CLAIM_SQL = text(
    """
    UPDATE webhook_deliveries AS d
    SET next_attempt_at = :lease_until, attempts = d.attempts + 1
    FROM webhook_endpoints AS e
    WHERE e.id = d.endpoint_id AND e.active AND d.id IN (
        SELECT id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= :now
          AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE active)
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.merchant_id, d.event_type, d.payload::text AS payload, d.attempts, e.url, e.secret
    """
)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_endpoint(self, values: dict[str, Any]) -> Row[Any]:
        statement = insert(webhook_endpoints).values(**values).returning(webhook_endpoints)
        row: Row[Any] = (await self._session.execute(statement)).one()
        return row

    async def endpoints(self, merchant_id: str) -> Sequence[Row[Any]]:
        query = (
            select(webhook_endpoints)
            .where(webhook_endpoints.c.merchant_id == merchant_id)
            .order_by(webhook_endpoints.c.created_at)
        )
        return (await self._session.execute(query)).all()

    async def deactivate(self, merchant_id: str, endpoint_id: UUID) -> bool:
        result = await self._session.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.merchant_id == merchant_id, webhook_endpoints.c.id == endpoint_id)
            .values(active=False)
            .returning(webhook_endpoints.c.id)
        )
        return result.first() is not None

    async def queue_deliveries(self, envelopes: Sequence[Envelope]) -> int:
        """One delivery per (event, subscribed active endpoint); a re-queued event is not delivered twice."""
        merchants = sorted({e.merchant_id for e in envelopes})
        rows = await self._session.execute(
            select(
                webhook_endpoints.c.id, webhook_endpoints.c.merchant_id, webhook_endpoints.c.event_types
            ).where(webhook_endpoints.c.merchant_id.in_(merchants), webhook_endpoints.c.active.is_(True))
        )
        by_merchant: dict[str, list[tuple[UUID, set[str]]]] = {}
        for row in rows:
            by_merchant.setdefault(row.merchant_id, []).append((row.id, set(row.event_types)))
        values = [
            {
                "id": new_event_id(),
                "merchant_id": envelope.merchant_id,
                "endpoint_id": endpoint_id,
                "event_id": envelope.id,
                "event_type": envelope.type,
                "payload": envelope.model_dump(mode="json"),
            }
            for envelope in envelopes
            for endpoint_id, types in by_merchant.get(envelope.merchant_id, ())
            if envelope.type in types
        ]
        if values:
            await self._session.execute(pg_insert(webhook_deliveries).on_conflict_do_nothing(), values)
        return len(values)

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> Sequence[Row[Any]]:
        """Lease due deliveries to this worker: a crash mid-send lets the lease lapse and another retry."""
        result = await self._session.execute(
            CLAIM_SQL, {"now": now, "lease_until": now + lease, "limit": limit}
        )
        return result.all()

    async def record_attempt(
        self,
        delivery_id: UUID,
        attempt: int,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        outcome: dict[str, Any],
    ) -> None:
        await self._session.execute(
            insert(webhook_attempts).values(
                delivery_id=delivery_id,
                attempt=attempt,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        await self._session.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(last_status_code=status_code, last_error=error, **outcome)
        )

    async def deliveries(
        self, merchant_id: str, *, status: str | None, endpoint_id: UUID | None, limit: int
    ) -> Sequence[Row[Any]]:
        query = select(webhook_deliveries).where(webhook_deliveries.c.merchant_id == merchant_id)
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status)
        if endpoint_id is not None:
            query = query.where(webhook_deliveries.c.endpoint_id == endpoint_id)
        query = query.order_by(webhook_deliveries.c.created_at.desc()).limit(limit)
        return (await self._session.execute(query)).all()

    async def delivery(
        self, merchant_id: str, delivery_id: UUID, *, for_update: bool = False
    ) -> Row[Any] | None:
        query = select(webhook_deliveries).where(
            webhook_deliveries.c.merchant_id == merchant_id, webhook_deliveries.c.id == delivery_id
        )
        if for_update:
            query = query.with_for_update()
        return (await self._session.execute(query)).first()

    async def attempts(self, delivery_id: UUID) -> Sequence[Row[Any]]:
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery_id)
            .order_by(webhook_attempts.c.attempt)
        )
        return (await self._session.execute(query)).all()

    async def requeue(self, merchant_id: str, delivery_id: UUID) -> None:
        await self._session.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.merchant_id == merchant_id, webhook_deliveries.c.id == delivery_id)
            .values(status="pending", next_attempt_at=func.now())
        )
