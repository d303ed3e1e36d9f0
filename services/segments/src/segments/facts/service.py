"""Re-evaluating customers after their facts changed, and recording what changed as events.

Only real changes leave a trace: a membership row is inserted or deleted and, in the same transaction,
exactly one `segment.entered` / `segment.exited` goes to the outbox. Replaying the same facts finds
nothing to change and so emits nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import TypeAdapter

from meadow_contracts import CustomerLifecycleChanged, SegmentEntered, SegmentExited, Topic
from meadow_runtime.telemetry import current_trace_headers

from ..definitions.repository import StoredSegment
from ..domain.evaluation import CompiledSegments, Outcome, compile_segments, reevaluate
from ..domain.rules import Rule, parse_rule
from ..uow import SegmentsUnitOfWork

# What a customer's re-evaluation was triggered by; `None` means everything (daily job, recompute).
Touched = Mapping[str, frozenset[str] | None]


@lru_cache(maxsize=65536)
def builtin_segment_id(merchant: str, key: str) -> UUID:
    """Built-in segments have no row; their id is derived, so it is stable across replays and rebuilds."""
    return uuid5(NAMESPACE_URL, f"meadow:segments:{merchant}:{key}")


@lru_cache(maxsize=4096)
def _parsed(rule_json: str) -> Rule:
    return parse_rule(json.loads(rule_json))


def compiled_for(segments: Sequence[StoredSegment], now: datetime) -> CompiledSegments:
    rules = {s.key: _parsed(json.dumps(s.rule, sort_keys=True)) for s in segments}
    return compile_segments(rules, now)


async def reevaluate_customers(
    uow: SegmentsUnitOfWork,
    merchant: str,
    touched: Touched,
    now: datetime,
    compiled: CompiledSegments | None = None,
    segment_ids: Mapping[str, UUID] | None = None,
) -> list[Outcome]:
    if not touched:
        return []
    if compiled is None or segment_ids is None:
        stored = await uow.definitions.all_of(merchant, share_lock=True)
        compiled = compiled_for(stored, now)
        segment_ids = {s.key: s.id for s in stored}
    facts = await uow.facts.load(merchant, list(touched))
    outcomes = [reevaluate(facts[c], now, compiled, touched[c]) for c in sorted(facts)]
    await record_outcomes(uow, merchant, outcomes, now, segment_ids)
    return outcomes


async def record_outcomes(
    uow: SegmentsUnitOfWork,
    merchant: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    segment_ids: Mapping[str, UUID],
) -> None:
    """Memberships, lifecycle stages and their events, written together by one statement.

    Exits first, then entries, then lifecycle changes, so a customer's move from `lifecycle:new` to
    `lifecycle:repurchase` reads as exit then enter; within each, customers in the order of `outcomes`.
    """
    names = {key: str(id_) for key, id_ in segment_ids.items()}
    changed = [o for o in outcomes if o.entered or o.exited]
    exits = [(key, o.customer_id) for o in changed for key in sorted(o.exited)]
    entries = [(key, o.customer_id) for o in changed for key in sorted(o.entered)]
    for key, _ in (*exits, *entries):
        if key not in names:
            names[key] = str(builtin_segment_id(merchant, key))
    stages = [
        (o.customer_id, o.lifecycle_before, o.lifecycle_after)
        for o in outcomes
        if o.lifecycle_after != o.lifecycle_before
    ]
    await uow.facts.record_changes(
        merchant,
        exits,
        entries,
        stages,
        segment_ids=names,
        at=now,
        at_json=_json_time(now),
        envelope={
            "topic": Topic.SEGMENTS.value,
            "source": "segments",
            "time": _json_time(datetime.now(UTC)),
            "headers": json.dumps(current_trace_headers()),
            "exited_type": SegmentExited.event_type,
            "entered_type": SegmentEntered.event_type,
            "lifecycle_type": CustomerLifecycleChanged.event_type,
        },
        members={o.customer_id: o.members for o in changed if o.members is not None},
    )


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _json_time(at: datetime) -> str:
    """A datetime as our envelopes carry it (pydantic's JSON form), so SQL-built events read the same."""
    text: str = _DATETIME.dump_python(at, mode="json")
    return text
