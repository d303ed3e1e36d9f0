"""Request and response bodies of comments."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from meadow_contracts.events import CommentKind


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: CommentKind = "comment"
    body: str = Field(min_length=1, max_length=2000)
    image_urls: list[HttpUrl] = Field(default_factory=list, max_length=9, description="buyer shows")
    order_id: str | None = Field(default=None, min_length=1, max_length=128, description="buyer shows")
    reply_to: UUID | None = Field(default=None, description="the comment this replies to")


class CommentFlagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thoughtful: bool | None = Field(default=None, description="weighs more in the check-in lottery")
    hidden: bool | None = None


class CommentOut(BaseModel):
    id: UUID
    post_id: UUID
    group_id: UUID | None
    customer_id: str
    by_staff: bool
    kind: CommentKind
    body: str
    image_urls: list[str]
    order_id: str | None
    reply_to: UUID | None
    thoughtful: bool
    hidden: bool
    created_at: datetime


class CommentList(BaseModel):
    items: list[CommentOut]
