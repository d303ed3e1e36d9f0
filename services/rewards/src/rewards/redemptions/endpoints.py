"""Redeem and cancel: atomic, idempotent with `Idempotency-Key`, scoped to the caller's merchant."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..api import RewardsUoW, acting_customer
from . import service
from .schemas import RedeemRequest, Redemption

router = APIRouter(tags=["redemptions"])


@router.post(
    "/v1/redemptions",
    status_code=status.HTTP_201_CREATED,
    response_model=Redemption,
    responses={
        409: {"description": "insufficient points, out of stock, limit reached or reward unavailable"}
    },
)
async def redeem(
    body: RedeemRequest,
    request: Request,
    principal: CurrentPrincipal,
    uow: RewardsUoW,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    customer_id = acting_customer(principal, body.customer_id)

    async def action() -> Redemption:
        row = await service.redeem(uow, principal.merchant_id, customer_id, body.reward_id, body.quantity)
        return Redemption.model_validate(row)

    return await run_idempotently(
        uow, request, caller=principal, key=idempotency_key, action=action, status_code=201
    )


@router.post("/v1/redemptions/{redemption_id}/cancel", response_model=Redemption)
async def cancel_redemption(
    redemption_id: UUID,
    request: Request,
    principal: StaffPrincipal,
    uow: RewardsUoW,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    principal.require_role("operator")

    async def action() -> Redemption:
        row = await service.cancel(uow, principal.merchant_id, redemption_id, principal.subject)
        return Redemption.model_validate(row)

    return await run_idempotently(uow, request, caller=principal, key=idempotency_key, action=action)


@router.get("/v1/redemptions/{redemption_id}", response_model=Redemption)
async def get_redemption(redemption_id: UUID, principal: CurrentPrincipal, uow: RewardsUoW) -> Redemption:
    row = await service.get(uow, principal.merchant_id, redemption_id)
    principal.require_customer_access(row["customer_id"])
    return Redemption.model_validate(row)


@router.get("/v1/customers/{customer_id}/redemptions", response_model=list[Redemption])
async def customer_redemptions(
    customer_id: str, principal: CurrentPrincipal, uow: RewardsUoW
) -> list[Redemption]:
    principal.require_customer_access(customer_id)
    return [
        Redemption.model_validate(r)
        for r in await service.of_customer(uow, principal.merchant_id, customer_id)
    ]
