"""HTTP API of poll votes and results."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from meadow_contracts.envelope import utc_now
from meadow_runtime.auth import CurrentPrincipal
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..uow import ContentUoW
from . import service

router = APIRouter(prefix="/v1", tags=["polls"])


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    option_id: str = Field(min_length=1, max_length=64)


@router.post("/posts/{post_id}/votes", status_code=201, response_model=service.VoteOut)
async def cast_vote(
    post_id: UUID,
    body: VoteIn,
    request: Request,
    uow: ContentUoW,
    principal: CurrentPrincipal,
    key: IdempotencyKey = None,
) -> Response:
    """One vote per member per poll; a second vote is a 409."""
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        status_code=201,
        action=lambda: service.cast_vote(uow, principal, post_id, body.option_id, utc_now()),
    )


@router.get("/posts/{post_id}/results", response_model=service.PollResults)
async def poll_results(post_id: UUID, uow: ContentUoW, principal: CurrentPrincipal) -> service.PollResults:
    """Live counts per option."""
    return await service.results(uow, principal, post_id, utc_now())
