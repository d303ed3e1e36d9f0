"""Bodies of the ingest API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class IngestBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description=(
            "Each item is either an envelope (`data` plus optional `id`, `time`, `subject`, `type`) or the "
            "event body itself. Without an `id`, the id is derived from the body of an event that carries "
            "its own time (orders, refunds, favorites, views), so a retried batch is recognised; a profile "
            "update gets a fresh id (send an `Idempotency-Key` to make its retry safe)."
        ),
    )


class IngestResult(BaseModel):
    accepted: list[UUID] = Field(description="event ids published now")
    duplicates: list[UUID] = Field(description="event ids already ingested before (nothing published)")
