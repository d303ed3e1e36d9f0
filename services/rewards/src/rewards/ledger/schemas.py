"""The ledger as the API shows it: balances, history, upcoming expiries and staff adjustments."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Balance(BaseModel):
    customer_id: str
    points: int = Field(description="spendable points (including lots due to expire at the next expiry run)")
    debt: int = Field(description="points owed after refunds of spent points; later earnings repay it first")
    tier_rank: int | None = Field(default=None, description="current tier (omitted for past balances)")
    tier_name: str | None = None
    as_of: datetime | None = None


class HistoryEntry(BaseModel):
    transfer_id: UUID
    kind: str
    reason: str | None
    points: int = Field(description="size of the movement")
    balance_change: int = Field(description="effect on the customer's spendable points")
    debt_change: int = Field(description="effect on the customer's debt")
    cause_ref: str | None
    actor: str | None
    note: str | None
    occurred_at: datetime
    recorded_at: datetime


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null at the end")


class Expiry(BaseModel):
    expires_at: datetime
    points: int


class AdjustmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(description="positive credits, negative deducts", ge=-10_000_000, le=10_000_000)
    reason: str = Field(min_length=1, max_length=500, description="why; kept in the audit trail")

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value


class Adjustment(BaseModel):
    transfer_id: UUID
    customer_id: str
    points: int
    reason: str | None
    actor: str | None
    balance_after: int
    debt_after: int
    recorded_at: datetime


class AuditedAdjustment(BaseModel):
    transfer_id: UUID
    customer_id: str
    points: int
    reason: str | None
    actor: str | None
    recorded_at: datetime
