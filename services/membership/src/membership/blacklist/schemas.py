"""Request and response bodies of the blacklist API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ..members.schemas import CustomerRef


class BlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerRef
    reason: str | None = Field(None, max_length=500)


class BlacklistEntryOut(BaseModel):
    customer_id: str
    blocked_by: str
    reason: str | None
    blocked_at: datetime
    removed_from_group_ids: list[UUID] = Field(default_factory=list)


class BlacklistPage(BaseModel):
    items: list[BlacklistEntryOut]
    next_cursor: str | None
