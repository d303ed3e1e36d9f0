"""Delivering events to merchants' endpoints: signed, leased, retried with backoff, every attempt logged."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import Row

from meadow_contracts.envelope import new_event_id
from meadow_runtime.auth import Principal
from meadow_runtime.errors import Conflict, NotFound

from ..domain.webhooks import SIGNATURE_HEADER, gives_up, retry_delay, sign
from ..problems import invalid
from ..uow import ContentUnitOfWork
from .schemas import AttemptOut, DeliveryOut, EndpointCreated, EndpointIn, EndpointOut

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
DELIVERY_BATCH = 100
SUBSCRIBABLE = (
    "content.post_published.v1",
    "content.comment_created.v1",
    "content.vote_cast.v1",
    "content.lottery_drawn.v1",
)


async def register_endpoint(
    uow: ContentUnitOfWork, principal: Principal, body: EndpointIn
) -> EndpointCreated:
    for index, event_type in enumerate(body.event_types):
        if event_type not in SUBSCRIBABLE:
            raise invalid(f"/event_types/{index}", f"unknown event type; one of {', '.join(SUBSCRIBABLE)}")
    row = await uow.webhooks.add_endpoint(
        {
            "id": new_event_id(),
            "merchant_id": principal.merchant_id,
            "url": str(body.url),
            "secret": secrets.token_hex(32),
            "event_types": list(dict.fromkeys(body.event_types)),
        }
    )
    return EndpointCreated(**endpoint_out(row).model_dump(), secret=row.secret)


def endpoint_out(row: Row[Any]) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        event_types=list(row.event_types),
        active=row.active,
        created_at=row.created_at,
    )


async def retry_delivery(uow: ContentUnitOfWork, principal: Principal, delivery_id: UUID) -> DeliveryOut:
    row = await uow.webhooks.delivery(principal.merchant_id, delivery_id, for_update=True)
    if row is None:
        raise NotFound("delivery", delivery_id)
    if row.status == "succeeded":
        raise Conflict("Already delivered", "The endpoint acknowledged this delivery.")
    await uow.webhooks.requeue(principal.merchant_id, delivery_id)
    return await delivery_out(uow, principal.merchant_id, delivery_id)


async def delivery_out(uow: ContentUnitOfWork, merchant_id: str, delivery_id: UUID) -> DeliveryOut:
    row = await uow.webhooks.delivery(merchant_id, delivery_id)
    if row is None:
        raise NotFound("delivery", delivery_id)
    attempts = [
        AttemptOut(
            attempt=a.attempt,
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a in await uow.webhooks.attempts(delivery_id)
    ]
    return summary(row, attempts)


def summary(row: Row[Any], attempts: list[AttemptOut] | None = None) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        attempt_log=attempts,
    )


async def _send(
    client: httpx.AsyncClient, delivery: Row[Any], now: datetime
) -> tuple[int | None, str | None, int]:
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(delivery.secret, int(now.timestamp()), body),
        "Meadow-Delivery-Id": str(delivery.id),
        "Meadow-Event-Type": delivery.event_type,
        "Meadow-Attempt": str(delivery.attempts),
    }
    started = time.perf_counter()
    try:
        response = await client.post(delivery.url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:1000], int((time.perf_counter() - started) * 1000)
    elapsed = int((time.perf_counter() - started) * 1000)
    if 200 <= response.status_code < 300:
        return response.status_code, None, elapsed
    return response.status_code, f"HTTP {response.status_code}: {response.text[:500]}", elapsed


async def deliver_due(
    uow_factory: Callable[[], ContentUnitOfWork],
    client: httpx.AsyncClient,
    now: datetime,
    limit: int = DELIVERY_BATCH,
) -> int:
    """Lease a batch, send it concurrently outside any transaction, then record each outcome."""
    async with uow_factory() as uow:
        claimed = await uow.webhooks.claim_due(now, LEASE, limit)
        await uow.commit()
    if not claimed:
        return 0
    results = await asyncio.gather(*(_send(client, d, now) for d in claimed))
    async with uow_factory() as uow:
        for delivery, (status_code, error, duration_ms) in zip(claimed, results, strict=True):
            if error is None:
                outcome: dict[str, Any] = {"status": "succeeded", "delivered_at": now}
            elif gives_up(delivery.attempts):
                outcome = {"status": "failed"}
                log.warning("webhook delivery gave up", extra={"delivery": str(delivery.id), "error": error})
            else:
                outcome = {"next_attempt_at": now + retry_delay(delivery.attempts)}
            await uow.webhooks.record_attempt(
                delivery.id, delivery.attempts, status_code, error, duration_ms, outcome
            )
        await uow.commit()
    return len(claimed)
