"""Issuing and accepting invites; smart invitations for customers who newly match a group's rules."""

from __future__ import annotations

import secrets
import uuid
from typing import Literal
from uuid import UUID

from meadow_contracts import InviteAccepted, InviteIssued, new_event_id, utc_now
from meadow_contracts.events import JoinRoute
from meadow_runtime.errors import NotFound, Problem, field_problem

from ..access import Actor, audit
from ..domain.invites import SMART_INVITE_WINDOW, InviteKind, InviteRefusal, may_send_smart_invite, refusal
from ..domain.join_rules import failed_rules
from ..groups.repository import GroupRecord
from ..members import service as members
from ..uow import MembershipUnitOfWork
from .repository import InviteRecord
from .schemas import AcceptedInvite, InviteCreate, InviteOut

ROUTE_OF_KIND: dict[InviteKind, JoinRoute] = {
    "link": "invite",
    "referral": "referral",
    "smart": "smart_invite",
}
# Smart invitations get ids derived from their cause, so handling one event twice cannot invite twice.
SMART_INVITE_NAMESPACE = uuid.UUID("5b0f7d1e-3c55-4a8e-9d0e-6a1f2b3c4d5e")

INVITE_REFUSALS: dict[InviteRefusal, str] = {
    "revoked": "This invite was revoked.",
    "expired": "This invite has expired.",
    "used_up": "This invite has been used as often as it may be.",
    "not_for_you": "This invitation was sent to another customer.",
    "self_referral": "Customers cannot accept their own referral code.",
}


class InviteRefused(Problem):
    def __init__(self, reason: InviteRefusal) -> None:
        super().__init__(
            409, "Invite cannot be accepted", INVITE_REFUSALS[reason], type_="invite-refused", reason=reason
        )


def render(invite: InviteRecord) -> InviteOut:
    return InviteOut(
        id=invite.id,
        group_id=invite.group_id,
        kind=invite.kind,
        code=invite.code,
        inviter_customer_id=invite.inviter_customer_id,
        invitee_customer_id=invite.invitee_customer_id,
        expires_at=invite.expires_at,
        max_uses=invite.max_uses,
        use_count=invite.use_count,
        revoked_at=invite.revoked_at,
        created_at=invite.created_at,
    )


def _new_code() -> str:
    return secrets.token_urlsafe(9)


def _issued(invite: InviteRecord) -> InviteIssued:
    return InviteIssued(
        invite_id=invite.id,
        group_id=invite.group_id,
        kind=invite.kind,
        code=invite.code,
        inviter_customer_id=invite.inviter_customer_id,
        invitee_customer_id=invite.invitee_customer_id,
        expires_at=invite.expires_at,
    )


async def create_invite(
    uow: MembershipUnitOfWork, actor: Actor, group_id: UUID, body: InviteCreate
) -> InviteOut:
    group = await uow.groups.get(actor.merchant_id, group_id)
    if group is None:
        raise NotFound("group", group_id)
    if group.archived_at is not None:
        raise Problem(409, "The group takes no new members", "This group was archived.", type_="conflict")
    inviter = body.inviter_customer_id
    if body.kind == "referral":
        if inviter is None and actor.role == "customer":
            inviter = actor.principal.customer_id
        if inviter is None:
            raise field_problem("/inviter_customer_id", "required for a referral code", error_type="missing")
        actor.require_customer_access(inviter)
        existing = await uow.invites.referral_code_of(actor.merchant_id, group_id, inviter)
        if existing is not None:
            return render(existing)
    else:
        actor.require_staff("operator")
        if inviter is not None:
            raise field_problem(
                "/inviter_customer_id", "only referral codes name an inviter", error_type="extra"
            )
    invite = await uow.invites.add(
        invite_id=new_event_id(),
        merchant_id=actor.merchant_id,
        group_id=group_id,
        kind=body.kind,
        code=_new_code(),
        created_by=actor.subject,
        inviter_customer_id=inviter,
        expires_at=body.expires_at,
        max_uses=body.max_uses,
    )
    if invite is None:  # a concurrent request created this customer's referral code first
        existing = await uow.invites.referral_code_of(actor.merchant_id, group_id, inviter or "")
        if existing is None:
            raise Problem(409, "Invite code collision", "Retry the request.", type_="conflict")
        return render(existing)
    uow.outbox.add(_issued(invite), merchant_id=actor.merchant_id, subject=inviter or str(group_id))
    await audit(uow, actor, "invite.issued", str(invite.id), group_id=str(group_id), kind=body.kind)
    return render(invite)


async def accept_invite(
    uow: MembershipUnitOfWork, actor: Actor, code: str, customer_id: str
) -> AcceptedInvite:
    merchant_id = actor.merchant_id
    await uow.members.lock_customer(merchant_id, customer_id)
    invite = await uow.invites.by_code(merchant_id, code, for_update=True)
    if invite is None:
        raise NotFound("invite", code)
    refused = refusal(invite.terms, customer_id=customer_id, now=utc_now())
    if refused is not None:
        raise InviteRefused(refused)
    outcome = await members.join(
        uow,
        merchant_id=merchant_id,
        group_id=invite.group_id,
        customer_id=customer_id,
        route=ROUTE_OF_KIND[invite.kind],
        invite_id=invite.id,
    )
    if not outcome.newly_joined:
        return AcceptedInvite(
            invite_id=invite.id,
            inviter_customer_id=invite.inviter_customer_id,
            membership=outcome.render(),
            counted=False,
        )
    if not await uow.invites.count_use(invite.id):
        raise InviteRefused("used_up")
    accepted_at = outcome.membership.joined_at
    await uow.invites.record_acceptance(invite.id, customer_id, outcome.membership.id, accepted_at)
    uow.outbox.add(
        InviteAccepted(
            invite_id=invite.id,
            group_id=invite.group_id,
            inviter_customer_id=invite.inviter_customer_id,
            invitee_customer_id=customer_id,
            accepted_at=accepted_at,
        ),
        merchant_id=merchant_id,
        subject=customer_id,
    )
    await audit(uow, actor, "invite.accepted_on_behalf", str(invite.id), customer_id=customer_id)
    return AcceptedInvite(
        invite_id=invite.id,
        inviter_customer_id=invite.inviter_customer_id,
        membership=outcome.render(),
        counted=True,
    )


async def revoke_invite(uow: MembershipUnitOfWork, actor: Actor, invite_id: UUID) -> InviteOut:
    invite = await uow.invites.revoke(actor.merchant_id, invite_id)
    if invite is None:
        raise NotFound("invite", invite_id)
    await audit(uow, actor, "invite.revoked", str(invite_id))
    return render(invite)


SmartInviteSkip = Literal["blacklisted", "member", "not_eligible", "full", "recently_invited", "throttled"]


async def issue_smart_invites(
    uow: MembershipUnitOfWork, *, merchant_id: str, customer_id: str, segment_key: str, cause_event_id: UUID
) -> list[InviteRecord]:
    """Invite a customer who newly entered `segment_key` to the groups requiring it that they may now join.

    At most the merchant's weekly allowance of smart invitations per customer (rolling 7 days); never to a
    blocked customer, an existing member, or twice to one group within the window.
    """
    candidates = await uow.groups.requiring_segment(merchant_id, segment_key)
    if not candidates:
        return []
    await uow.members.lock_customer(merchant_id, customer_id)
    if await uow.blacklist.contains(merchant_id, customer_id):
        return []
    now = utc_now()
    recent = await uow.invites.smart_invites_since(merchant_id, customer_id, now - SMART_INVITE_WINDOW)
    per_week = await uow.settings.smart_invites_per_week(merchant_id)
    invited_to = {i.group_id for i in recent}
    member_of = {m.group_id for m in await uow.members.active_of_customer(merchant_id, customer_id)}
    standing = await uow.projections.standing(merchant_id, customer_id)
    seats = await uow.groups.subgroups_of(merchant_id, [g.id for g in candidates])
    sent = len(recent)
    issued: list[InviteRecord] = []
    for group in candidates:
        if not may_send_smart_invite(sent, per_week=per_week):
            break
        if group.id in member_of or group.id in invited_to or failed_rules(group.rules, standing):
            continue
        if _seats_left(group, sum(s.member_count for s in seats.get(group.id, []))) <= 0:
            continue
        invite_id = uuid.uuid5(SMART_INVITE_NAMESPACE, f"{cause_event_id}:{group.id}")
        invite = await uow.invites.add(
            invite_id=invite_id,
            merchant_id=merchant_id,
            group_id=group.id,
            kind="smart",
            code=invite_id.hex[:20],
            created_by="smart-invitations",
            invitee_customer_id=customer_id,
            expires_at=now + SMART_INVITE_WINDOW,
            max_uses=1,
        )
        if invite is None:
            continue
        sent += 1
        issued.append(invite)
        uow.outbox.add(_issued(invite), merchant_id=merchant_id, subject=customer_id)
    return issued


def _seats_left(group: GroupRecord, taken: int) -> int:
    return group.subgroup_capacity * group.max_subgroups - taken
