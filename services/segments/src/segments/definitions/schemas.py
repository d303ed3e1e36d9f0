"""Request and response bodies of the segment definition API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

SEGMENT_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

RULE_EXAMPLE = {
    "kind": "all",
    "all": [
        {"kind": "profile", "field": "gender", "op": "eq", "value": "female"},
        {"kind": "purchased", "category": "infant_formula", "within_days": 90, "min_count": 2},
        {"kind": "not", "not": {"kind": "lifecycle", "stage": "problem"}},
    ],
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentIn(_Body):
    key: str = Field(pattern=SEGMENT_KEY_PATTERN, description="stable slug other services refer to")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: dict[str, Any] = Field(description="the rule AST", examples=[RULE_EXAMPLE])


class SegmentUpdate(_Body):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: dict[str, Any] = Field(examples=[RULE_EXAMPLE])


class PreviewIn(_Body):
    rule: dict[str, Any] = Field(examples=[RULE_EXAMPLE])
    sample_size: int = Field(default=20, ge=0, le=100)


class SegmentOut(BaseModel):
    id: UUID
    key: str
    name: str
    description: str
    rule: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class SegmentSaved(SegmentOut):
    entered: int = Field(description="customers who entered on this save")
    exited: int = Field(description="customers who left on this save")
    member_count: int


class PreviewOut(BaseModel):
    count: int
    sample: list[str]


class Member(BaseModel):
    customer_id: str
    entered_at: datetime


class MembersPage(BaseModel):
    segment_key: str
    items: list[Member]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class RecomputeOut(BaseModel):
    segment_key: str
    entered: int
    exited: int
    member_count: int
