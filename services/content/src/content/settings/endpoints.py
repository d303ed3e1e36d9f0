"""The merchant's time zone and each group's push rules (frequency cap, quiet hours)."""

from __future__ import annotations

from datetime import time
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from meadow_runtime.auth import StaffPrincipal
from meadow_runtime.errors import NotFound

from ..audiences.repository import GroupSettings
from ..domain.scheduling import DEFAULT_TIMEZONE, SchedulingError, zone
from ..problems import invalid
from ..uow import ContentUoW

router = APIRouter(prefix="/v1", tags=["settings"])


class MerchantSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = Field(min_length=1, max_length=64, examples=[DEFAULT_TIMEZONE])


class MerchantSettingsOut(BaseModel):
    timezone: str


class GroupSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_posts_per_day: int | None = Field(default=3, ge=1, le=100, description="null: no cap")
    quiet_start: time | None = Field(default=None, description="local time; may wrap midnight")
    quiet_end: time | None = None


class GroupSettingsOut(GroupSettingsIn):
    group_id: UUID


@router.get("/settings", response_model=MerchantSettingsOut)
async def get_settings(uow: ContentUoW, principal: StaffPrincipal) -> MerchantSettingsOut:
    return MerchantSettingsOut(timezone=await uow.audiences.timezone(principal.merchant_id))


@router.put("/settings", response_model=MerchantSettingsOut)
async def put_settings(
    body: MerchantSettingsIn, uow: ContentUoW, principal: StaffPrincipal
) -> MerchantSettingsOut:
    """Schedules, caps, quiet hours and lottery days are all read in this zone (default Asia/Shanghai)."""
    principal.require_role("owner")
    try:
        zone(body.timezone)
    except SchedulingError as error:
        raise invalid("/timezone", str(error)) from error
    await uow.audiences.set_timezone(principal.merchant_id, body.timezone)
    await uow.commit()
    return MerchantSettingsOut(timezone=body.timezone)


@router.get("/groups/{group_id}/settings", response_model=GroupSettingsOut)
async def get_group_settings(group_id: UUID, uow: ContentUoW, principal: StaffPrincipal) -> GroupSettingsOut:
    found = await uow.audiences.group_settings(principal.merchant_id, group_id)
    if found is None:
        raise NotFound("group", group_id)
    return GroupSettingsOut(
        group_id=group_id,
        max_posts_per_day=found.max_posts_per_day,
        quiet_start=found.quiet_start,
        quiet_end=found.quiet_end,
    )


@router.put("/groups/{group_id}/settings", response_model=GroupSettingsOut)
async def put_group_settings(
    group_id: UUID, body: GroupSettingsIn, uow: ContentUoW, principal: StaffPrincipal
) -> GroupSettingsOut:
    """Set a group's push rules; this also makes a group known to content before its first member joins."""
    principal.require_role("operator")
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise invalid(
            "/quiet_end" if body.quiet_end is None else "/quiet_start", "give both ends of quiet hours"
        )
    await uow.audiences.save_group_settings(
        principal.merchant_id,
        GroupSettings(group_id, body.max_posts_per_day, body.quiet_start, body.quiet_end),
    )
    await uow.commit()
    return GroupSettingsOut(group_id=group_id, **body.model_dump())
