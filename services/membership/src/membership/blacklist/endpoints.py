"""HTTP API of the blacklist: block, unblock (audited), list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..access import CurrentActor, UoW
from ..pagination import decode_cursor, encode_cursor
from . import service
from .schemas import BlacklistEntryOut, BlacklistPage, BlockBody

router = APIRouter(prefix="/v1/blacklist", tags=["blacklist"])


@router.post("", response_model=BlacklistEntryOut)
async def block_customer(
    body: BlockBody, request: Request, uow: UoW, actor: CurrentActor, idempotency_key: IdempotencyKey = None
) -> Response:
    """Block a customer: they leave every group (member.blocked) and cannot rejoin by any route."""
    actor.require_staff("operator")
    return await run_idempotently(
        uow,
        request,
        caller=actor.principal,
        key=idempotency_key,
        action=lambda: service.block(uow, actor, body),
    )


@router.delete("/{customer_id}", response_model=BlacklistEntryOut)
async def unblock_customer(
    customer_id: Annotated[str, Path(min_length=1, max_length=128)],
    uow: UoW,
    actor: CurrentActor,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> BlacklistEntryOut:
    """Unblock; the audit log keeps who blocked, who unblocked, and why."""
    actor.require_staff("operator")
    entry = await service.unblock(uow, actor, customer_id, reason)
    await uow.commit()
    return entry


@router.get("", response_model=BlacklistPage)
async def list_blacklist(
    uow: UoW,
    actor: CurrentActor,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> BlacklistPage:
    actor.require_staff("support")
    after = decode_cursor(cursor) if cursor else None
    found = await uow.blacklist.page(actor.merchant_id, after=after, limit=limit + 1)
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    return BlacklistPage(
        items=[
            BlacklistEntryOut(
                customer_id=e.customer_id, blocked_by=e.blocked_by, reason=e.reason, blocked_at=e.blocked_at
            )
            for e in page
        ],
        next_cursor=encode_cursor(last.blocked_at, last.customer_id) if last else None,
    )
