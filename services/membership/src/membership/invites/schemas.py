"""Request and response bodies of the invites API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from ..members.schemas import CustomerRef, MembershipOut


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["link", "referral"] = Field(
        description="'link': a shareable staff link; 'referral': a customer's personal code (one per group)"
    )
    inviter_customer_id: CustomerRef | None = Field(None, description="required for referral codes")
    expires_at: AwareDatetime | None = None
    max_uses: int | None = Field(None, ge=1, le=1_000_000)


class InviteAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerRef


InviteCode = Annotated[str, StringConstraints(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class InviteOut(BaseModel):
    id: UUID
    group_id: UUID
    kind: Literal["link", "referral", "smart"]
    code: str
    inviter_customer_id: str | None
    invitee_customer_id: str | None
    expires_at: datetime | None
    max_uses: int | None
    use_count: int
    revoked_at: datetime | None
    created_at: datetime


class InvitePage(BaseModel):
    items: list[InviteOut]
    next_cursor: str | None


class AcceptedInvite(BaseModel):
    invite_id: UUID
    inviter_customer_id: str | None
    membership: MembershipOut
    counted: bool = Field(description="false when the customer was already a member: no referral credit")
