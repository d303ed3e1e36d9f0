"""HTTP API for the merchant's owner: staff sub-accounts, the audit log and merchant settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from ..access import CurrentActor, UoW
from . import service
from .schemas import (
    AuditEntryOut,
    AuditPage,
    MerchantSettings,
    StaffCreate,
    StaffOut,
    StaffSubject,
    StaffUpdate,
)

router = APIRouter(prefix="/v1", tags=["staff"])


@router.post("/staff", response_model=StaffOut, status_code=status.HTTP_201_CREATED)
async def add_staff(body: StaffCreate, uow: UoW, actor: CurrentActor) -> StaffOut:
    actor.require_staff("owner")
    account = await service.add_staff(uow, actor, body)
    await uow.commit()
    return account


@router.get("/staff", response_model=list[StaffOut])
async def list_staff(uow: UoW, actor: CurrentActor) -> list[StaffOut]:
    actor.require_staff("owner")
    return [service.render(a) for a in await uow.staff.all(actor.merchant_id)]


@router.patch("/staff/{subject}", response_model=StaffOut)
async def update_staff(
    subject: Annotated[StaffSubject, Path()], body: StaffUpdate, uow: UoW, actor: CurrentActor
) -> StaffOut:
    """Change a sub-account's role or name, or disable it (its tokens stop working at once)."""
    actor.require_staff("owner")
    account = await service.update_staff(uow, actor, subject, body)
    await uow.commit()
    return account


@router.get("/audit-log", response_model=AuditPage)
async def read_audit_log(
    uow: UoW,
    actor: CurrentActor,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    """Every staff action, oldest first. Owners only."""
    actor.require_staff("owner")
    found = await uow.audit.page(
        actor.merchant_id, after_id=int(cursor) if cursor else None, limit=limit + 1, action=action
    )
    page = found[:limit]
    return AuditPage(
        items=[AuditEntryOut(**e.__dict__) for e in page],
        next_cursor=str(page[-1].id) if len(found) > limit else None,
    )


@router.get("/settings", response_model=MerchantSettings)
async def read_settings(uow: UoW, actor: CurrentActor) -> MerchantSettings:
    actor.require_staff("support")
    return MerchantSettings(
        smart_invites_per_week=await uow.settings.smart_invites_per_week(actor.merchant_id)
    )


@router.put("/settings", response_model=MerchantSettings)
async def write_settings(body: MerchantSettings, uow: UoW, actor: CurrentActor) -> MerchantSettings:
    actor.require_staff("owner")
    saved = await service.set_settings(uow, actor, body)
    await uow.commit()
    return saved
