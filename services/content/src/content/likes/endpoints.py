"""HTTP API of likes."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from meadow_contracts.envelope import utc_now
from meadow_runtime.auth import CurrentPrincipal

from ..uow import ContentUoW
from . import service

router = APIRouter(prefix="/v1", tags=["likes"])


@router.post(
    "/posts/{post_id}/likes",
    status_code=201,
    response_model=service.LikeOut,
    responses={200: {"model": service.LikeOut, "description": "liked before: nothing changed"}},
)
async def like_post(post_id: UUID, uow: ContentUoW, principal: CurrentPrincipal) -> Response:
    """A member likes a post they can see, once: liking again changes nothing (so a retry is safe
    without an `Idempotency-Key`) and answers 200 with the first like."""
    result = await service.like_post(uow, principal, post_id, utc_now())
    await uow.commit()
    return Response(
        result.model_dump_json(), status_code=201 if result.created else 200, media_type="application/json"
    )
