"""The inbox: which events a consumer group has already applied, written in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

# Almost every batch is all new events: a plain insert of them costs about half of what ON CONFLICT's
# speculative insertion does, and the inbox insert sits on every batch's critical path.
CLAIM_ALL_SQL = text(
    "INSERT INTO inbox (consumer_group, event_id) SELECT :group, unnest(CAST(:ids AS uuid[]))"
)

# The careful path, for a batch holding a redelivered event. It answers with the ids that were already
# there, as one array, so even a thousand fresh events cost one tiny row back instead of a thousand.
CLAIM_NEW_SQL = text(
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
    both apply one event. The caller's transaction stays usable either way: the optimistic insert runs
    inside a savepoint, and only that savepoint is rolled back when an id turns out to be known.
    """
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    parameters = {"group": consumer_group, "ids": ids}
    try:
        async with session.begin_nested():
            await session.execute(CLAIM_ALL_SQL, parameters)
    except IntegrityError:
        already_handled = await session.scalar(CLAIM_NEW_SQL, parameters)
        return set(ids).difference(already_handled or ())
    return set(ids)
