"""HTTP API of lotteries and their verification."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..uow import ContentUoW
from . import service
from .schemas import LotteryIn, LotteryList, LotteryOut, VerificationIn, VerificationOut

router = APIRouter(prefix="/v1", tags=["lotteries"])


@router.post("/lotteries", status_code=201, response_model=LotteryOut)
async def create_lottery(
    body: LotteryIn, request: Request, uow: ContentUoW, principal: StaffPrincipal, key: IdempotencyKey = None
) -> Response:
    """Schedule a day's check-in lottery; the seed's sha256 is published now, the seed after the draw."""
    principal.require_role("operator")
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        status_code=201,
        action=lambda: service.create_lottery(uow, principal, body),
    )


@router.get("/lotteries", response_model=LotteryList)
async def list_lotteries(
    uow: ContentUoW, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> LotteryList:
    rows = await uow.lotteries.list(principal.merchant_id, limit)
    return LotteryList(items=[service.to_out(r) for r in rows])


@router.get("/lotteries/{lottery_id}", response_model=LotteryOut)
async def get_lottery(lottery_id: UUID, uow: ContentUoW, principal: CurrentPrincipal) -> LotteryOut:
    return await service.get_lottery(uow, principal.merchant_id, lottery_id)


@router.get("/lotteries/{lottery_id}/verify", response_model=VerificationOut)
async def verify_lottery(
    lottery_id: UUID,
    uow: ContentUoW,
    principal: CurrentPrincipal,
    seed: Annotated[
        str | None, Query(max_length=128, description="a seed to test; default the revealed one")
    ] = None,
) -> VerificationOut:
    """Re-draw from the seed and the recorded entrants; valid only if the seed matches its commitment."""
    return await service.verify_lottery(uow, principal.merchant_id, lottery_id, seed)


@router.post("/lotteries/verify", response_model=VerificationOut)
async def verify_published_draw(body: VerificationIn, principal: CurrentPrincipal) -> VerificationOut:
    """Verify a draw from its published parts alone, without reading anything stored."""
    return service.verify(body)
