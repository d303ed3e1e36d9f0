"""The event envelope every message on every topic carries (CloudEvents-like, JSON, UTF-8).

`data` holds the event model's fields: a plain dict in a bare `Envelope`, the typed event in an
`Envelope[OrderPaid]` (what `registry.decode_envelope` returns, parsed in one pass). The Kafka key is
`merchant_id:subject`, so one customer's (or one aggregate's) events land on one partition and stay in
order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self
from uuid import UUID

import uuid_utils.compat
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeVar


def new_event_id() -> UUID:
    """UUIDv7: time-ordered, so ids sort roughly by creation and index well."""
    return uuid_utils.compat.uuid7()


def utc_now() -> datetime:
    return datetime.now(UTC)


class Part(BaseModel):
    """A value nested inside an event (an order line, say): frozen like the event itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Event(BaseModel):
    """Base of every event model. Subclasses set `event_type` and `topic` and list their fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]


# Covariant, so an `Envelope[OrderPaid]` goes wherever an `Envelope[Any]` is expected; frozen, so sound.
EventData = TypeVar("EventData", default=dict[str, Any], covariant=True)


class Envelope(BaseModel, Generic[EventData]):
    model_config = ConfigDict(frozen=True)

    id: UUID = Field(default_factory=new_event_id)
    type: str = Field(min_length=1)
    source: str = Field(min_length=1)
    time: datetime = Field(default_factory=utc_now)
    merchant_id: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=1, max_length=128)
    data: EventData

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        source: str,
        merchant_id: str,
        subject: str,
        id: UUID | None = None,
        time: datetime | None = None,
    ) -> Self:
        return cls(
            id=id or new_event_id(),
            type=event.event_type,
            source=source,
            time=time or utc_now(),
            merchant_id=merchant_id,
            subject=subject,
            data=event.model_dump(mode="json"),
        )

    @property
    def key(self) -> str:
        return f"{self.merchant_id}:{self.subject}"

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        return cls.model_validate_json(raw)
