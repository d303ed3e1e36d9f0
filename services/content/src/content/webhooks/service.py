"""Delivering events to merchants' endpoints: signed, leased, retried with backoff, every attempt logged."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
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

from ..config import egress_policy
from ..domain.egress import EgressPolicy, IPAddress, addresses_problem, ip_literal, url_problem
from ..domain.webhooks import SIGNATURE_HEADER, gives_up, retry_delay, sign
from ..problems import invalid
from ..uow import ContentUnitOfWork
from .schemas import AttemptOut, DeliveryOut, EndpointCreated, EndpointIn, EndpointOut

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)
DELIVERY_BATCH = 100
RESOLVE_TIMEOUT_SECONDS = 10.0
SUBSCRIBABLE = (
    "content.post_published.v1",
    "content.comment_created.v1",
    "content.vote_cast.v1",
    "content.post_liked.v1",
    "content.lottery_drawn.v1",
)


async def register_endpoint(
    uow: ContentUnitOfWork, principal: Principal, body: EndpointIn, policy: EgressPolicy | None = None
) -> EndpointCreated:
    url = str(body.url)
    problem = url_problem(url, policy or egress_policy())
    if problem is not None:
        raise invalid("/url", problem, type_="url-not-allowed")
    for index, event_type in enumerate(body.event_types):
        if event_type not in SUBSCRIBABLE:
            raise invalid(f"/event_types/{index}", f"unknown event type; one of {', '.join(SUBSCRIBABLE)}")
    row = await uow.webhooks.add_endpoint(
        {
            "id": new_event_id(),
            "merchant_id": principal.merchant_id,
            "url": url,
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


class EgressRefused(Exception):
    """The endpoint's host is, or resolves to, an address deliveries must not reach."""


async def _pinned_targets(
    url: httpx.URL, policy: EgressPolicy
) -> tuple[list[httpx.URL], dict[str, str], dict[str, Any]]:
    """Resolve the host once, vet every address, and aim the request at the vetted addresses.

    The URL is rewritten to an IP while the `Host` header and the TLS SNI (httpcore's `sni_hostname`,
    which is also the name the certificate is verified against) keep the registered name: the socket
    goes to exactly an address that was checked, so a second DNS answer (rebinding) cannot swap it.
    `Connection: close` because httpx pools connections by the IP in the URL: a TLS connection opened
    for one merchant's name must not be reused for another name that shares the address.
    """
    literal = ip_literal(url.host)
    if literal is not None:
        problem = addresses_problem([literal], policy)
        if problem is not None:
            raise EgressRefused(problem)
        return [url], {}, {}
    name = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
        infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_literal(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    problem = addresses_problem(addresses, policy)
    if problem is not None:
        raise EgressRefused(problem)
    headers = {"Host": url.netloc.decode("ascii"), "Connection": "close"}
    extensions: dict[str, Any] = {"sni_hostname": name} if url.scheme == "https" else {}
    return [url.copy_with(host=str(address)) for address in addresses], headers, extensions


async def _send(
    client: httpx.AsyncClient, delivery: Row[Any], now: datetime, policy: EgressPolicy
) -> tuple[int | None, str | None, int, bool]:
    """One attempt: (status code, error, duration ms, whether the failure is permanent)."""
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(delivery.secret, int(now.timestamp()), body),
        "Meadow-Delivery-Id": str(delivery.id),
        "Meadow-Event-Type": delivery.event_type,
        "Meadow-Attempt": str(delivery.attempts),
    }
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        targets, pinned_headers, extensions = await _pinned_targets(httpx.URL(delivery.url), policy)
    except EgressRefused as refused:
        log.warning("webhook delivery refused", extra={"delivery": str(delivery.id), "reason": str(refused)})
        return None, f"refused: {refused}", elapsed(), True
    except (OSError, TimeoutError, UnicodeError, httpx.InvalidURL) as error:
        # DNS failures are often transient (a merchant fixing a record): the usual backoff applies.
        return None, f"DNS: {type(error).__name__}: {error}"[:1000], elapsed(), False
    response: httpx.Response | None = None
    try:
        for index, target in enumerate(targets):
            request = client.build_request(
                "POST", target, content=body, headers=headers | pinned_headers, extensions=extensions
            )
            try:
                # A redirect is reported, never followed: its target was not vetted.
                response = await client.send(request, follow_redirects=False)
                break
            except httpx.ConnectError:
                if index == len(targets) - 1:  # every vetted address refused: report the last error
                    raise
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:1000], elapsed(), False
    assert response is not None
    if 200 <= response.status_code < 300:
        return response.status_code, None, elapsed(), False
    return response.status_code, f"HTTP {response.status_code}: {response.text[:500]}", elapsed(), False


async def deliver_due(
    uow_factory: Callable[[], ContentUnitOfWork],
    client: httpx.AsyncClient,
    now: datetime,
    limit: int = DELIVERY_BATCH,
    policy: EgressPolicy | None = None,
) -> int:
    """Lease a batch, send it concurrently outside any transaction, then record each outcome.

    A delivery refused by the egress policy fails at once (no retries): the endpoint, not the network,
    is at fault, and the merchant sees `failed` with the reason and can retry after fixing it.
    """
    async with uow_factory() as uow:
        claimed = await uow.webhooks.claim_due(now, LEASE, limit)
        await uow.commit()
    if not claimed:
        return 0
    policy = policy or egress_policy()
    results = await asyncio.gather(*(_send(client, d, now, policy) for d in claimed))
    async with uow_factory() as uow:
        for delivery, (status_code, error, duration_ms, permanent) in zip(claimed, results, strict=True):
            if error is None:
                outcome: dict[str, Any] = {"status": "succeeded", "delivered_at": now}
            elif permanent or gives_up(delivery.attempts):
                outcome = {"status": "failed"}
                log.warning("webhook delivery gave up", extra={"delivery": str(delivery.id), "error": error})
            else:
                outcome = {"next_attempt_at": now + retry_delay(delivery.attempts)}
            await uow.webhooks.record_attempt(
                delivery.id, delivery.attempts, status_code, error, duration_ms, outcome
            )
        await uow.commit()
    return len(claimed)
