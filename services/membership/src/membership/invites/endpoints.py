"""HTTP API of invites: staff links, customers' referral codes, acceptance, listing and revocation."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status

from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..access import CurrentActor, UoW
from ..members.endpoints import REFUSALS, answer_join
from ..pagination import decode_uuid_cursor, encode_cursor
from . import service
from .schemas import AcceptedInvite, InviteAccept, InviteCode, InviteCreate, InviteOut, InvitePage

router = APIRouter(prefix="/v1", tags=["invites"])


@router.post("/groups/{group_id}/invites", response_model=InviteOut, status_code=status.HTTP_201_CREATED)
async def create_invite(
    group_id: UUID,
    body: InviteCreate,
    request: Request,
    uow: UoW,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Staff create shareable links; a customer gets their personal referral code (the same one each time)."""
    return await run_idempotently(
        uow,
        request,
        caller=actor.principal,
        key=idempotency_key,
        action=lambda: service.create_invite(uow, actor, group_id, body),
        status_code=status.HTTP_201_CREATED,
    )


@router.get("/groups/{group_id}/invites", response_model=InvitePage)
async def list_invites(
    group_id: UUID,
    uow: UoW,
    actor: CurrentActor,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InvitePage:
    actor.require_staff("support")
    after = decode_uuid_cursor(cursor) if cursor else None
    found = await uow.invites.of_group(actor.merchant_id, group_id, after=after, limit=limit + 1)
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    return InvitePage(
        items=[service.render(i) for i in page],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.post("/invites/{code}/accept", response_model=AcceptedInvite, responses=REFUSALS)
async def accept_invite(
    code: Annotated[InviteCode, Path()],
    body: InviteAccept,
    request: Request,
    uow: UoW,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Join the invite's group; records who invited whom and emits invite.accepted."""
    actor.require_acting_for(body.customer_id)
    return await answer_join(
        uow,
        request,
        actor,
        idempotency_key,
        lambda: service.accept_invite(uow, actor, code, body.customer_id),
    )


@router.delete("/invites/{invite_id}", response_model=InviteOut)
async def revoke_invite(invite_id: UUID, uow: UoW, actor: CurrentActor) -> InviteOut:
    actor.require_staff("operator")
    revoked = await service.revoke_invite(uow, actor, invite_id)
    await uow.commit()
    return revoked
