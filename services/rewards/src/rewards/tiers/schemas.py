"""Tiers (VIP levels) as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BIGINT_MAX = 2**63 - 1  # threshold_points' column type


class TierFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    rank: int = Field(ge=1, le=100, description="higher is better; unique per merchant")
    threshold_points: int = Field(
        ge=0, le=BIGINT_MAX, description="net points earned over the rolling 12 months to reach it"
    )
    multiplier: Decimal = Field(default=Decimal(1), gt=0, le=10, max_digits=6, decimal_places=3)
    perks: list[str] = Field(default_factory=list, max_length=50)


class TierUpdate(BaseModel):
    """The fields to change; every tier field has a value, so none may be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    threshold_points: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    multiplier: Decimal | None = Field(default=None, gt=0, le=10, max_digits=6, decimal_places=3)
    perks: list[str] | None = Field(default=None, max_length=50)

    @field_validator("name", "threshold_points", "multiplier", "perks", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class Tier(TierFields):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    created_at: datetime
