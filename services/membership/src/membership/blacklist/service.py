"""Blocking a customer removes them from every group of the merchant and bars every route back in."""

from __future__ import annotations

from meadow_contracts import MemberBlocked, utc_now
from meadow_runtime.errors import NotFound

from ..access import Actor, audit
from ..uow import MembershipUnitOfWork
from .schemas import BlacklistEntryOut, BlockBody


async def block(uow: MembershipUnitOfWork, actor: Actor, body: BlockBody) -> BlacklistEntryOut:
    merchant_id, customer_id = actor.merchant_id, body.customer_id
    # Same customer lock as joins: a join racing this block either commits first (and is removed here)
    # or runs after and sees the blacklist entry.
    await uow.members.lock_customer(merchant_id, customer_id)
    at = utc_now()
    if not await uow.blacklist.add(merchant_id, customer_id, by=actor.subject, reason=body.reason, at=at):
        return BlacklistEntryOut(
            customer_id=customer_id, blocked_by=actor.subject, reason=body.reason, blocked_at=at
        )
    active = await uow.members.active_of_customer(merchant_id, customer_id, for_update=True)
    for membership in active:
        await uow.members.end(membership.id, reason="blocked", by=actor.subject, at=at)
        await uow.members.free_seat(membership.group_id, membership.subgroup_id)
    removed = tuple(m.group_id for m in active)
    uow.outbox.add(
        MemberBlocked(
            customer_id=customer_id,
            blocked_by=actor.subject,
            reason=body.reason,
            removed_from_group_ids=removed,
            blocked_at=at,
        ),
        merchant_id=merchant_id,
        subject=customer_id,
    )
    await audit(
        uow,
        actor,
        "customer.blocked",
        customer_id,
        reason=body.reason,
        removed_from_group_ids=[str(g) for g in removed],
    )
    return BlacklistEntryOut(
        customer_id=customer_id,
        blocked_by=actor.subject,
        reason=body.reason,
        blocked_at=at,
        removed_from_group_ids=list(removed),
    )


async def unblock(
    uow: MembershipUnitOfWork, actor: Actor, customer_id: str, reason: str | None
) -> BlacklistEntryOut:
    await uow.members.lock_customer(actor.merchant_id, customer_id)
    entry = await uow.blacklist.remove(actor.merchant_id, customer_id)
    if entry is None:
        raise NotFound("blacklist entry", customer_id)
    await audit(
        uow,
        actor,
        "customer.unblocked",
        customer_id,
        reason=reason,
        blocked_by=entry.blocked_by,
        blocked_reason=entry.reason,
        blocked_at=entry.blocked_at.isoformat(),
    )
    return BlacklistEntryOut(
        customer_id=entry.customer_id,
        blocked_by=entry.blocked_by,
        reason=entry.reason,
        blocked_at=entry.blocked_at,
    )
