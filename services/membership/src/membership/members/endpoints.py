"""HTTP API of members: join, leave, staff removal, member lists, eligibility and one-click product joins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response

from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..access import Actor, CurrentActor, UoW, audit
from ..pagination import decode_uuid_cursor, encode_cursor
from ..uow import MembershipUnitOfWork
from . import service
from .schemas import Eligibility, JoinBody, LeaveBody, MemberPage, MembershipOut, ProductJoinBody

router = APIRouter(prefix="/v1", tags=["members"])

REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "Join refused: `reason` is blacklisted, not_eligible (see `failed_rules`), "
        "group_archived or group_full",
        "content": {"application/problem+json": {}},
    },
}


async def answer_join(
    uow: MembershipUnitOfWork,
    request: Request,
    actor: Actor,
    key: str | None,
    action: Callable[[], Awaitable[Any]],
) -> Response:
    """Run a join; when the set is full, the owner's notification still commits before the refusal."""
    try:
        return await run_idempotently(uow, request, caller=actor.principal, key=key, action=action)
    except service.GroupSetIsFull as refused:
        await uow.rollback()
        await service.tell_owner_set_is_full(uow, actor.merchant_id, refused)
        await uow.commit()
        raise


@router.post("/groups/{group_id}/members", response_model=MembershipOut, responses=REFUSALS)
async def join_group(
    group_id: UUID,
    body: JoinBody,
    request: Request,
    uow: UoW,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Join: the customer lands in the first sub-group with room. Joining again returns the membership."""
    actor.require_acting_for(body.customer_id)

    async def act() -> MembershipOut:
        if idempotency_key is None and not actor.is_staff:
            # Nothing else shares the transaction (no key to claim, no staff action to audit).
            outcome = await service.join_as_own_transaction(
                uow, merchant_id=actor.merchant_id, group_id=group_id, customer_id=body.customer_id
            )
            return outcome.render()
        outcome = await service.join(
            uow, merchant_id=actor.merchant_id, group_id=group_id, customer_id=body.customer_id
        )
        if outcome.newly_joined:
            await audit(uow, actor, "member.added", str(group_id), customer_id=body.customer_id)
        return outcome.render()

    return await answer_join(uow, request, actor, idempotency_key, act)


@router.post("/groups/{group_id}/leave", response_model=MembershipOut)
async def leave_group(
    group_id: UUID,
    body: LeaveBody,
    request: Request,
    uow: UoW,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The customer leaves (emits member.left); their seat is freed."""
    actor.require_acting_for(body.customer_id)

    async def act() -> MembershipOut:
        ended = await service.end_membership(
            uow,
            merchant_id=actor.merchant_id,
            group_id=group_id,
            customer_id=body.customer_id,
            by=actor.subject,
            removed=False,
        )
        await audit(uow, actor, "member.left_on_behalf", str(group_id), customer_id=body.customer_id)
        return service.render(ended)

    return await run_idempotently(uow, request, caller=actor.principal, key=idempotency_key, action=act)


@router.delete("/groups/{group_id}/members/{customer_id}", response_model=MembershipOut)
async def remove_member(
    group_id: UUID,
    customer_id: Annotated[str, Path(min_length=1, max_length=128)],
    uow: UoW,
    actor: CurrentActor,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> MembershipOut:
    """Staff remove a member (emits member.removed); the seat is freed and the customer may rejoin."""
    actor.require_staff("operator")
    ended = await service.end_membership(
        uow,
        merchant_id=actor.merchant_id,
        group_id=group_id,
        customer_id=customer_id,
        by=actor.subject,
        removed=True,
        reason=reason,
    )
    await audit(uow, actor, "member.removed", str(group_id), customer_id=customer_id, reason=reason)
    await uow.commit()
    return service.render(ended)


@router.get("/members", response_model=MemberPage)
async def list_members(
    uow: UoW,
    actor: CurrentActor,
    group_id: UUID | None = None,
    subgroup_id: UUID | None = None,
    joined_since: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MemberPage:
    """Active members, oldest join first; pass `next_cursor` back as `cursor` for the next page."""
    actor.require_staff("support")
    after = decode_uuid_cursor(cursor) if cursor else None
    found = await uow.members.page(
        actor.merchant_id,
        group_id=group_id,
        subgroup_id=subgroup_id,
        joined_since=joined_since,
        after=after,
        limit=limit + 1,
    )
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    return MemberPage(
        items=[service.render(m) for m in page],
        next_cursor=encode_cursor(last.joined_at, last.id) if last else None,
    )


@router.get("/eligibility", response_model=Eligibility)
async def eligibility(
    uow: UoW, actor: CurrentActor, customer_id: Annotated[str, Query(min_length=1, max_length=128)]
) -> Eligibility:
    """The groups this customer can join right now, and for the others why not."""
    actor.require_customer_access(customer_id)
    return await service.eligibility(uow, actor.merchant_id, customer_id)


@router.post("/product-joins", response_model=MembershipOut, responses=REFUSALS)
async def join_from_product_page(
    body: ProductJoinBody,
    request: Request,
    uow: UoW,
    actor: CurrentActor,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """One-click join from a product page: the group aimed at this product (or its category) is chosen."""
    actor.require_acting_for(body.customer_id)

    async def act() -> MembershipOut:
        outcome = await service.join_from_product_page(
            uow,
            merchant_id=actor.merchant_id,
            customer_id=body.customer_id,
            product_id=body.product_id,
            category=body.category,
        )
        return outcome.render()

    return await answer_join(uow, request, actor, idempotency_key, act)
