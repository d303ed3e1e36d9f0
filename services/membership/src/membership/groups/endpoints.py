"""HTTP API of groups: create, list, read, change and archive (staff only; reads need support or higher)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..access import CurrentActor, UoW
from ..pagination import decode_uuid_cursor, encode_cursor
from . import service
from .schemas import GroupCreate, GroupOut, GroupPage, GroupUpdate

router = APIRouter(prefix="/v1/groups", tags=["groups"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupOut)
async def create_group(
    body: GroupCreate, request: Request, uow: UoW, actor: CurrentActor, idempotency_key: IdempotencyKey = None
) -> Response:
    actor.require_staff("operator")
    return await run_idempotently(
        uow,
        request,
        caller=actor.principal,
        key=idempotency_key,
        action=lambda: service.create_group(uow, actor, body),
        status_code=status.HTTP_201_CREATED,
    )


@router.get("", response_model=GroupPage)
async def list_groups(
    uow: UoW,
    actor: CurrentActor,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_archived: bool = False,
) -> GroupPage:
    actor.require_staff("support")
    after = decode_uuid_cursor(cursor) if cursor else None
    found = await uow.groups.page(
        actor.merchant_id, after=after, limit=limit + 1, include_archived=include_archived
    )
    page = found[:limit]
    subgroups = await uow.groups.subgroups_of(actor.merchant_id, [g.id for g in page])
    last = page[-1] if len(found) > limit else None
    return GroupPage(
        items=[service.render(g, subgroups.get(g.id, [])) for g in page],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get("/{group_id}", response_model=GroupOut)
async def get_group(group_id: UUID, uow: UoW, actor: CurrentActor) -> GroupOut:
    actor.require_staff("support")
    return await service.get_group(uow, actor.merchant_id, group_id)


@router.patch("/{group_id}", response_model=GroupOut)
async def update_group(group_id: UUID, body: GroupUpdate, uow: UoW, actor: CurrentActor) -> GroupOut:
    actor.require_staff("operator")
    updated = await service.update_group(uow, actor, group_id, body)
    await uow.commit()
    return updated


@router.delete("/{group_id}", response_model=GroupOut)
async def archive_group(group_id: UUID, uow: UoW, actor: CurrentActor) -> GroupOut:
    """Archive: the group takes no more joins; its members and history stay."""
    actor.require_staff("operator")
    archived = await service.archive_group(uow, actor, group_id)
    await uow.commit()
    return archived
