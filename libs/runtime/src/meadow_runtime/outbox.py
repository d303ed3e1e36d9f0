"""Appending events to the outbox inside the caller's transaction.

An event is only ever written here, never produced directly: it leaves the service when (and only if)
the state change that caused it commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from meadow_contracts import Envelope, Event

from .tables import runtime_metadata
from .telemetry import current_trace_headers

OUTBOX: Table = runtime_metadata().tables["outbox"]


# One statement for the whole unit of work's events, however many: arrays in, rows out. The envelopes
# pass through jsonb on their way into the `json` column: jsonb refuses what no consumer's database could
# store (a \u0000 escape), so such an event fails the unit of work (a 422 for a request) instead of
# entering the stream. The bulk paths that write the outbox in SQL build their envelopes from values
# already stored in text columns, which refuse the same.
INSERT_ROWS = text(
    """
    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, headers)
    SELECT id, topic, key, type, CAST(payload AS json), CAST(:headers AS json)
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:topics AS text[]), CAST(:keys AS text[]),
        CAST(:types AS text[]), CAST(:payloads AS jsonb[])
    ) AS row(id, topic, key, type, payload)
    """
)


class Outbox:
    """Collects the events of one unit of work; `flush` writes them in one statement."""

    def __init__(self, session: AsyncSession, source: str) -> None:
        self._session = session
        self._source = source
        self._pending: list[tuple[Envelope, str]] = []
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
        self._pending.append((envelope, event.topic))
        return envelope

    def add_envelopes(self, envelopes: Sequence[Envelope], topic: str) -> None:
        self._pending.extend((envelope, topic) for envelope in envelopes)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        await self._session.execute(
            INSERT_ROWS,
            {
                "ids": [envelope.id for envelope, _ in pending],
                "topics": [topic for _, topic in pending],
                "keys": [envelope.key for envelope, _ in pending],
                "types": [envelope.type for envelope, _ in pending],
                "payloads": [envelope.model_dump_json() for envelope, _ in pending],
                "headers": json.dumps(self._headers()),
            },
        )

    def discard(self) -> None:
        self._pending.clear()
