"""Staff sub-accounts (owner only) and merchant settings; every change is audited."""

from __future__ import annotations

from dataclasses import asdict

from meadow_runtime.errors import Conflict, NotFound

from ..access import Actor, audit
from ..uow import MembershipUnitOfWork
from .repository import StaffAccount
from .schemas import MerchantSettings, StaffCreate, StaffOut, StaffUpdate


def render(account: StaffAccount) -> StaffOut:
    return StaffOut(**asdict(account))


async def add_staff(uow: MembershipUnitOfWork, actor: Actor, body: StaffCreate) -> StaffOut:
    account = await uow.staff.add(actor.merchant_id, body.subject, body.role, body.display_name)
    if account is None:
        raise Conflict(
            "Staff account exists", f"{body.subject} is already a staff account.", pointer="/subject"
        )
    await audit(uow, actor, "staff.added", body.subject, role=body.role)
    return render(account)


async def update_staff(uow: MembershipUnitOfWork, actor: Actor, subject: str, body: StaffUpdate) -> StaffOut:
    if subject == actor.subject and (body.disabled or (body.role is not None and body.role != "owner")):
        raise Conflict("Owners cannot demote or disable themselves", "Ask another owner.", pointer="/role")
    account = await uow.staff.update(
        actor.merchant_id,
        subject,
        role=body.role,
        display_name=body.display_name,
        rename="display_name" in body.model_fields_set,
        disabled=body.disabled,
    )
    if account is None:
        raise NotFound("staff account", subject)
    await audit(uow, actor, "staff.updated", subject, **body.model_dump(exclude_unset=True))
    return render(account)


async def set_settings(uow: MembershipUnitOfWork, actor: Actor, body: MerchantSettings) -> MerchantSettings:
    await uow.settings.set_smart_invites_per_week(actor.merchant_id, body.smart_invites_per_week)
    await audit(uow, actor, "settings.updated", None, smart_invites_per_week=body.smart_invites_per_week)
    return body
