"""Catalog rewards as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

INT4_MAX = 2**31 - 1  # the columns' integer type


class RewardFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    points_price: int = Field(gt=0, le=100_000_000)
    stock: int | None = Field(default=None, ge=0, le=INT4_MAX, description="omit for unlimited")
    per_customer_limit: int | None = Field(default=None, ge=1, le=INT4_MAX)
    min_tier_rank: int = Field(default=0, ge=0, le=INT4_MAX)
    # with a UTC offset: a window without one means a different instant in every time zone
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    active: bool = True

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Self:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class RewardCreate(RewardFields):
    pass


class RewardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    points_price: int | None = Field(default=None, gt=0, le=100_000_000)
    stock: int | None = Field(default=None, ge=0, le=INT4_MAX)
    per_customer_limit: int | None = Field(default=None, ge=1, le=INT4_MAX)
    min_tier_rank: int | None = Field(default=None, ge=0, le=INT4_MAX)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    active: bool | None = None


class Reward(RewardFields):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    created_at: datetime
    updated_at: datetime
