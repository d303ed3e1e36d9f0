"""Request and response bodies of the staff, audit-log and settings API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

StaffSubject = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: StaffSubject = Field(description="the `sub` claim of this account's tokens")
    role: Literal["owner", "operator", "support"]
    display_name: str | None = Field(None, max_length=200)


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["owner", "operator", "support"] | None = None
    display_name: str | None = Field(None, max_length=200)
    disabled: bool | None = None


class StaffOut(BaseModel):
    subject: str
    role: str
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None


class AuditEntryOut(BaseModel):
    id: int
    actor: str
    actor_role: str
    action: str
    target: str | None
    details: dict[str, Any]
    at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class MerchantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    smart_invites_per_week: int = Field(
        ge=0, le=100, description="most smart invitations one customer gets in any 7 days (0 turns them off)"
    )
