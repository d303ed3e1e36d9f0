"""Request and response bodies of the members API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CustomerRef = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinBody(Strict):
    customer_id: CustomerRef


class LeaveBody(Strict):
    customer_id: CustomerRef


class ProductJoinBody(Strict):
    customer_id: CustomerRef
    product_id: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
    category: (
        Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)] | None
    ) = None


class MembershipOut(BaseModel):
    id: UUID
    group_id: UUID
    subgroup_id: UUID
    subgroup_number: int
    customer_id: str
    route: str
    invite_id: UUID | None
    joined_at: datetime
    already_member: bool = Field(False, description="true when the customer was a member before this request")


class MemberPage(BaseModel):
    items: list[MembershipOut]
    next_cursor: str | None


class EligibleGroup(BaseModel):
    group_id: UUID
    name: str
    purpose: str | None
    seats_left: int


class IneligibleGroup(BaseModel):
    group_id: UUID
    name: str
    reason: Literal["already_member", "not_eligible", "group_full"]
    failed_rules: list[dict[str, object]] = Field(default_factory=list)


class Eligibility(BaseModel):
    customer_id: str
    blacklisted: bool
    groups: list[EligibleGroup] = Field(description="groups the customer can join right now")
    not_joinable: list[IneligibleGroup]
