"""HTTP API of comments."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from meadow_contracts.envelope import utc_now
from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..uow import ContentUoW
from . import service
from .schemas import CommentFlagsIn, CommentIn, CommentList, CommentOut

router = APIRouter(prefix="/v1", tags=["comments"])


@router.post("/posts/{post_id}/comments", status_code=201, response_model=CommentOut)
async def add_comment(
    post_id: UUID,
    body: CommentIn,
    request: Request,
    uow: ContentUoW,
    principal: CurrentPrincipal,
    key: IdempotencyKey = None,
) -> Response:
    """A member's comment, check-in, buyer show or question (no links), or a staff reply."""
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        status_code=201,
        action=lambda: service.add_comment(uow, principal, post_id, body, utc_now()),
    )


@router.get("/posts/{post_id}/comments", response_model=CommentList)
async def list_comments(
    post_id: UUID,
    uow: ContentUoW,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CommentList:
    """Oldest first; hidden comments only for staff."""
    return CommentList(items=await service.list_comments(uow, principal, post_id, utc_now(), limit))


@router.patch("/comments/{comment_id}", response_model=CommentOut)
async def flag_comment(
    comment_id: UUID, body: CommentFlagsIn, uow: ContentUoW, principal: StaffPrincipal
) -> CommentOut:
    """Staff mark a comment thoughtful (it weighs more in the lottery) or hide it."""
    result = await service.flag_comment(uow, principal, comment_id, body)
    await uow.commit()
    return result
