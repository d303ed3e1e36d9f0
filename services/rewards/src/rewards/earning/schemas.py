"""Earn rules as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

RuleKind = Literal["purchase", "buyer_show", "check_in", "join_group", "referral", "lottery"]


class EarnRuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RuleKind
    name: str = Field(min_length=1, max_length=200)
    points: int | None = Field(
        default=None, gt=0, le=1_000_000, description="fixed points; every kind but purchase"
    )
    points_per_unit: Decimal | None = Field(
        default=None, gt=0, le=1000, max_digits=10, decimal_places=3,
        description="purchase: points per whole currency unit paid (before the tier multiplier)",
    )  # fmt: skip
    include_categories: list[str] = Field(
        default_factory=list, description="purchase: only these (empty: all)"
    )
    exclude_categories: list[str] = Field(default_factory=list, description="purchase: never these")
    daily_limit: int | None = Field(
        default=None, ge=1, description="buyer_show/check_in: earns per customer per day"
    )
    active: bool = True

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Self:
        if self.kind == "purchase":
            if self.points_per_unit is None:
                raise ValueError("points_per_unit is required for a purchase rule")
            if self.points is not None:
                raise ValueError("points does not apply to a purchase rule; use points_per_unit")
        else:
            if self.points is None and self.kind != "lottery":
                raise ValueError(f"points is required for a {self.kind} rule")
            if self.points_per_unit is not None or self.include_categories or self.exclude_categories:
                raise ValueError(
                    f"points_per_unit and categories apply to purchase rules only, not {self.kind}"
                )
        if self.daily_limit is not None and self.kind not in ("buyer_show", "check_in"):
            raise ValueError("daily_limit applies to buyer_show and check_in rules only")
        return self


class EarnRuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    points: int | None = Field(default=None, gt=0, le=1_000_000)
    points_per_unit: Decimal | None = Field(default=None, gt=0, le=1000, max_digits=10, decimal_places=3)
    include_categories: list[str] | None = None
    exclude_categories: list[str] | None = None
    daily_limit: int | None = Field(default=None, ge=1)
    active: bool | None = None


class EarnRule(EarnRuleFields):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    created_at: datetime
    updated_at: datetime
