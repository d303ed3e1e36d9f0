"""The merchant's ledger settings: how long earned points stay valid, and the time zone of "a day"."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import text

from meadow_runtime.auth import StaffPrincipal

from ..api import RewardsUoW
from ..ledger.service import DEFAULT_VALIDITY_DAYS

router = APIRouter(prefix="/v1/settings", tags=["settings"])
DEFAULT_TIMEZONE = "Asia/Shanghai"


class LedgerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points_validity_days: int = Field(
        default=DEFAULT_VALIDITY_DAYS, ge=1, le=3650, description="lots earned from now on expire after this"
    )
    timezone: str = Field(default=DEFAULT_TIMEZONE, description="IANA zone; daily limits count days in it")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: a directory, e.g. 'America'
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


@router.get("", response_model=LedgerSettings)
async def get_settings(principal: StaffPrincipal, uow: RewardsUoW) -> LedgerSettings:
    stored = await uow.ledger.merchant_settings([principal.merchant_id])
    if principal.merchant_id not in stored:
        return LedgerSettings()
    days, zone = stored[principal.merchant_id]
    return LedgerSettings(points_validity_days=days, timezone=zone)


@router.put("", response_model=LedgerSettings)
async def put_settings(body: LedgerSettings, principal: StaffPrincipal, uow: RewardsUoW) -> LedgerSettings:
    principal.require_role("owner")
    await uow.session.execute(
        text(
            """
            INSERT INTO merchant_settings (merchant_id, points_validity_days, timezone) VALUES (:m, :d, :z)
            ON CONFLICT (merchant_id)
            DO UPDATE SET points_validity_days = :d, timezone = :z, updated_at = now()
            """
        ),
        {"m": principal.merchant_id, "d": body.points_validity_days, "z": body.timezone},
    )
    await uow.commit()
    return body
