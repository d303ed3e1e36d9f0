"""HTTP API of posts, schedules, campaigns and the member feed."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from meadow_contracts.envelope import utc_now
from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..problems import forbidden
from ..uow import ContentUoW
from . import service
from .schemas import CampaignIn, CampaignOut, PostIn, PostList, PostOut, PostPatch, PostStatus, ScheduleIn

router = APIRouter(prefix="/v1", tags=["posts"])
CREATED: dict[int | str, dict[str, Any]] = {201: {"description": "created"}}


@router.post("/posts", status_code=201, response_model=PostOut, responses=CREATED)
async def create_post(
    body: PostIn, request: Request, uow: ContentUoW, principal: StaffPrincipal, key: IdempotencyKey = None
) -> Response:
    """A draft without `schedule`, otherwise scheduled (and maybe moved by caps and quiet hours)."""
    principal.require_role("operator")
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        status_code=201,
        action=lambda: service.create_post(uow, principal, body, utc_now()),
    )


@router.get("/posts", response_model=PostList)
async def list_posts(
    uow: ContentUoW,
    principal: StaffPrincipal,
    status: PostStatus | None = None,
    campaign_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PostList:
    rows = await uow.posts.list_posts(
        principal.merchant_id, status=status, campaign_id=campaign_id, limit=limit
    )
    return PostList(items=[service.to_out(r) for r in rows])


@router.get("/posts/{post_id}", response_model=PostOut)
async def get_post(post_id: UUID, uow: ContentUoW, principal: CurrentPrincipal) -> PostOut:
    """Staff see any post of their merchant; a member sees published posts of their groups and segments."""
    return service.to_out(await service.visible_post(uow, principal, post_id, utc_now()))


@router.patch("/posts/{post_id}", response_model=PostOut)
async def edit_post(
    post_id: UUID,
    body: PostPatch,
    request: Request,
    uow: ContentUoW,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
) -> Response:
    principal.require_role("operator")
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        action=lambda: service.edit_post(uow, principal, post_id, body, utc_now()),
    )


@router.put("/posts/{post_id}/schedule", response_model=PostOut)
async def schedule_post(
    post_id: UUID,
    body: ScheduleIn,
    request: Request,
    uow: ContentUoW,
    principal: StaffPrincipal,
    key: IdempotencyKey = None,
) -> Response:
    """Schedule a draft, or replace a scheduled post's schedule."""
    principal.require_role("operator")
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        action=lambda: service.edit_post(uow, principal, post_id, PostPatch(schedule=body), utc_now()),
    )


@router.post("/posts/{post_id}/cancel", response_model=PostOut)
async def cancel_post(post_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> PostOut:
    principal.require_role("operator")
    result = await service.cancel_post(uow, principal, post_id)
    await uow.commit()
    return result


@router.get("/feed", response_model=PostList)
async def member_feed(
    uow: ContentUoW, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> PostList:
    """The calling member's published posts, newest first, early access only where their tier allows."""
    if principal.customer_id is None:
        raise forbidden("The feed is a member's view: use a customer token.")
    return PostList(items=await service.feed(uow, principal, utc_now(), limit))


@router.post("/campaigns", status_code=201, response_model=CampaignOut, responses=CREATED)
async def create_campaign(
    body: CampaignIn, request: Request, uow: ContentUoW, principal: StaffPrincipal, key: IdempotencyKey = None
) -> Response:
    """A new-arrival (上新) campaign: several posts created together, all or none."""
    principal.require_role("operator")
    return await run_idempotently(
        uow,
        request,
        caller=principal,
        key=key,
        status_code=201,
        action=lambda: service.create_campaign(uow, principal, body, utc_now()),
    )


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(campaign_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> CampaignOut:
    return await service.get_campaign(uow, principal.merchant_id, campaign_id)


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel_campaign(campaign_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> CampaignOut:
    """Cancel the campaign's drafts and scheduled posts; published ones stay."""
    principal.require_role("operator")
    result = await service.cancel_campaign(uow, principal, campaign_id)
    await uow.commit()
    return result
