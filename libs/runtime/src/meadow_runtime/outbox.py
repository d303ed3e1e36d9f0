"""Appending events to the outbox inside the caller's transaction.

An event is only ever written here, never produced directly: it leaves the service when (and only if)
the state change that caused it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from meadow_contracts import Envelope, Event

from .tables import runtime_metadata
from .telemetry import current_trace_headers

OUTBOX: Table = runtime_metadata().tables["outbox"]


def outbox_row(envelope: Envelope, topic: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "aggregatetype": topic,
        "aggregateid": envelope.key,
        "type": envelope.type,
        "payload": envelope.model_dump(mode="json"),
        "headers": headers,
    }


class Outbox:
    """Collects the events of one unit of work; `flush` writes them in one statement."""

    def __init__(self, session: AsyncSession, source: str) -> None:
        self._session = session
        self._source = source
        self._pending: list[dict[str, Any]] = []
        self._trace_headers: dict[str, str] | None = None

    def _headers(self) -> dict[str, str]:
        """The trace context is the same for every event of one unit of work: read it once."""
        if self._trace_headers is None:
            self._trace_headers = current_trace_headers()
        return self._trace_headers

    def add(self, event: Event, *, merchant_id: str, subject: str, **envelope_fields: Any) -> Envelope:
        envelope = Envelope.wrap(
            event, source=self._source, merchant_id=merchant_id, subject=subject, **envelope_fields
        )
        self._pending.append(outbox_row(envelope, event.topic, self._headers()))
        return envelope

    def add_envelopes(self, envelopes: Sequence[Envelope], topic: str) -> None:
        headers = self._headers()
        self._pending.extend(outbox_row(e, topic, headers) for e in envelopes)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            await self._session.execute(insert(OUTBOX), rows)

    def discard(self) -> None:
        self._pending.clear()
