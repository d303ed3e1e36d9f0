"""Request and response bodies of the groups API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..domain.placement import DEFAULT_MAX_SUBGROUPS, DEFAULT_SUBGROUP_CAPACITY

SegmentKey = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
ProductRef = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinRulesBody(Strict):
    required_segments: list[SegmentKey] = Field(default_factory=list, max_length=50)
    required_mode: Literal["any", "all"] = Field("any", description="'any' of the required segments or 'all'")
    excluded_segments: list[SegmentKey] = Field(default_factory=list, max_length=50)
    min_tier_rank: int = Field(0, ge=0, le=1000, description="0 = any tier")


class WelcomePerk(Strict):
    kind: Literal["points", "coupon", "gift", "message"]
    description: str = Field(min_length=1, max_length=500)
    value: str | None = Field(None, max_length=200, description="points amount, coupon id, …")


class GroupCreate(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["奶粉老客群"])
    purpose: str | None = Field(None, max_length=200, examples=["repeat milk-powder buyers"])
    description: str | None = Field(None, max_length=5000)
    join_rules: JoinRulesBody = Field(default_factory=JoinRulesBody)
    welcome_perks: list[WelcomePerk] = Field(default_factory=list, max_length=20)
    subgroup_capacity: int = Field(DEFAULT_SUBGROUP_CAPACITY, ge=1, le=100_000)
    max_subgroups: int = Field(DEFAULT_MAX_SUBGROUPS, ge=1, le=1000)
    product_ids: list[ProductRef] = Field(default_factory=list, max_length=1000)
    categories: list[ProductRef] = Field(default_factory=list, max_length=100)


class GroupUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    purpose: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    join_rules: JoinRulesBody | None = None
    welcome_perks: list[WelcomePerk] | None = Field(None, max_length=20)
    subgroup_capacity: int | None = Field(None, ge=1, le=100_000)
    max_subgroups: int | None = Field(None, ge=1, le=1000)
    product_ids: list[ProductRef] | None = Field(None, max_length=1000)
    categories: list[ProductRef] | None = Field(None, max_length=100)


class SubgroupOut(BaseModel):
    id: UUID
    number: int
    capacity: int
    member_count: int


class GroupOut(BaseModel):
    id: UUID
    name: str
    purpose: str | None
    description: str | None
    join_rules: JoinRulesBody
    welcome_perks: list[WelcomePerk]
    subgroup_capacity: int
    max_subgroups: int
    product_ids: list[str]
    categories: list[str]
    member_count: int
    subgroups: list[SubgroupOut]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class GroupPage(BaseModel):
    items: list[GroupOut]
    next_cursor: str | None
