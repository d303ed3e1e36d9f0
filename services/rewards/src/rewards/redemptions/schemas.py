"""Redemptions as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward_id: UUID
    quantity: int = Field(default=1, ge=1, le=100)
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="required for staff; a customer redeems for themself",
    )


class Redemption(BaseModel):
    id: UUID
    customer_id: str
    reward_id: UUID
    quantity: int
    points: int
    status: Literal["completed", "cancelled"]
    transfer_id: UUID
    created_at: datetime
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
