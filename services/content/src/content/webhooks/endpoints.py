"""HTTP API of webhook endpoints and the delivery log."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from meadow_runtime.auth import StaffPrincipal
from meadow_runtime.errors import NotFound
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..uow import ContentUoW
from . import service
from .schemas import DeliveryList, DeliveryOut, EndpointCreated, EndpointIn, EndpointList

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=201, response_model=EndpointCreated)
async def register_endpoint(
    body: EndpointIn, request: Request, uow: ContentUoW, principal: StaffPrincipal, key: IdempotencyKey = None
) -> Response:
    """Register an endpoint; deliveries carry `Meadow-Signature: t=<unix>,v1=<hex HMAC-SHA256>`."""
    principal.require_role("owner")
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        status_code=201,
        action=lambda: service.register_endpoint(uow, principal, body),
    )


@router.get("", response_model=EndpointList)
async def list_endpoints(uow: ContentUoW, principal: StaffPrincipal) -> EndpointList:
    return EndpointList(
        items=[service.endpoint_out(r) for r in await uow.webhooks.endpoints(principal.merchant_id)]
    )


@router.delete("/{endpoint_id}", status_code=204)
async def deactivate_endpoint(endpoint_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> Response:
    """Stop new deliveries to the endpoint; its log stays."""
    principal.require_role("owner")
    if not await uow.webhooks.deactivate(principal.merchant_id, endpoint_id):
        raise NotFound("webhook endpoint", endpoint_id)
    await uow.commit()
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryList)
async def delivery_log(
    uow: ContentUoW,
    principal: StaffPrincipal,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    endpoint_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    rows = await uow.webhooks.deliveries(
        principal.merchant_id, status=status, endpoint_id=endpoint_id, limit=limit
    )
    return DeliveryList(items=[service.summary(r) for r in rows])


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
async def delivery(delivery_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> DeliveryOut:
    """One delivery with every attempt: status code, error, duration."""
    return await service.delivery_out(uow, principal.merchant_id, delivery_id)


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry_delivery(delivery_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> DeliveryOut:
    """Send a pending or failed delivery again now."""
    principal.require_role("operator")
    result = await service.retry_delivery(uow, principal, delivery_id)
    await uow.commit()
    return result
