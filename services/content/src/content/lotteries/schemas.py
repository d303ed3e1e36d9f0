"""Request and response bodies of lotteries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class LotteryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_id: UUID = Field(description="the check-in call whose check-ins enter")
    group_id: UUID | None = Field(default=None, description="only check-ins from this group; absent: all")
    draw_date: date = Field(description="the merchant-local day whose check-ins enter")
    draw_at: AwareDatetime
    winners: int = Field(ge=1, le=1000)
    prize_points: int = Field(ge=0, le=1_000_000)
    thoughtful_weight: int = Field(default=1, ge=1, le=100, description="tickets for a thoughtful check-in")


class EntrantOut(BaseModel):
    customer_id: str
    weight: int


class LotteryOut(BaseModel):
    id: UUID
    post_id: UUID
    group_id: UUID | None
    draw_date: date
    draw_at: datetime
    winners_count: int
    prize_points: int
    thoughtful_weight: int
    status: Literal["scheduled", "drawn"]
    seed_sha256: str = Field(description="published before the draw")
    seed: str | None = Field(description="revealed after the draw")
    entrants: list[EntrantOut] | None
    winners: list[str] | None
    drawn_at: datetime | None
    announcement_post_id: UUID | None


class LotteryList(BaseModel):
    items: list[LotteryOut]


class VerificationIn(BaseModel):
    """Everything needed to re-check a draw, as published; anyone can post it."""

    model_config = ConfigDict(extra="forbid")

    seed: str = Field(min_length=1, max_length=128)
    seed_sha256: str = Field(min_length=64, max_length=64)
    entrants: list[EntrantOut]
    winners_count: int = Field(ge=1)
    winners: list[str]


class VerificationOut(BaseModel):
    valid: bool
    reason: str
    seed_sha256: str
    expected_winners: list[str]
    claimed_winners: list[str]
