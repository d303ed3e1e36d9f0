"""The inbox: which events a consumer group has already applied, written in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Answers with the ids that were already there, as one array: almost always empty, so a batch of a
# thousand fresh events costs one tiny row back instead of a thousand.
CLAIM_SQL = text(
    """
    WITH claimed AS (
        INSERT INTO inbox (consumer_group, event_id)
        SELECT :group, unnest(CAST(:ids AS uuid[]))
        ON CONFLICT DO NOTHING
        RETURNING event_id
    )
    SELECT ARRAY(SELECT unnest(CAST(:ids AS uuid[])) EXCEPT SELECT event_id FROM claimed)
    """
)


async def claim_new(session: AsyncSession, consumer_group: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """Record the ids as handled and return those not seen before; the rest are duplicates to skip.

    A concurrent transaction claiming the same id blocks here until it ends, so two workers can never
    both apply one event.
    """
    if not event_ids:
        return set()
    already_handled = await session.scalar(CLAIM_SQL, {"group": consumer_group, "ids": list(event_ids)})
    return set(event_ids).difference(already_handled or ())
