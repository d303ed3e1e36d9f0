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

from meadow_contracts import (
    CustomerLifecycleChanged,
    Envelope,
    Event,
    SegmentEntered,
    SegmentExited,
    Topic,
    new_event_id,
)

from ..definitions.repository import StoredSegment
from ..domain.evaluation import CompiledSegment, Outcome, compile_segments, reevaluate
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


def compiled_for(segments: Sequence[StoredSegment], now: datetime) -> list[CompiledSegment]:
    rules = {s.key: _parsed(json.dumps(s.rule, sort_keys=True)) for s in segments}
    return compile_segments(rules, now)


async def reevaluate_customers(
    uow: SegmentsUnitOfWork,
    merchant: str,
    touched: Touched,
    now: datetime,
    compiled: Sequence[CompiledSegment] | None = None,
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
    entered = [(key, o.customer_id) for o in outcomes for key in sorted(o.entered)]
    exited = [(key, o.customer_id) for o in outcomes for key in sorted(o.exited)]
    await uow.facts.enter_segments(merchant, entered, now)
    await uow.facts.exit_segments(merchant, exited)
    stages = {o.customer_id: o.lifecycle_after for o in outcomes if o.lifecycle_after != o.lifecycle_before}
    await uow.facts.save_lifecycles(merchant, stages)

    def segment_id(key: str) -> UUID:
        return segment_ids.get(key) or builtin_segment_id(merchant, key)

    envelopes = [
        _envelope(
            SegmentExited(segment_id=segment_id(key), segment_key=key, customer_id=customer, exited_at=now),
            merchant,
            customer,
        )
        for key, customer in exited
    ] + [
        _envelope(
            SegmentEntered(segment_id=segment_id(key), segment_key=key, customer_id=customer, entered_at=now),
            merchant,
            customer,
        )
        for key, customer in entered
    ]
    envelopes += [
        _envelope(
            CustomerLifecycleChanged(
                customer_id=o.customer_id,
                old_stage=o.lifecycle_before,
                new_stage=o.lifecycle_after,
                changed_at=now,
            ),
            merchant,
            o.customer_id,
        )
        for o in outcomes
        if o.lifecycle_after != o.lifecycle_before
    ]
    # One call for the whole batch: the trace context is read once, not once per event.
    uow.outbox.add_envelopes(envelopes, Topic.SEGMENTS.value)


def _envelope(event: Event, merchant: str, customer: str) -> Envelope:
    """Our own events, already validated as models: no need to validate the envelope around them again."""
    return Envelope.model_construct(
        id=new_event_id(),
        type=event.event_type,
        source="segments",
        time=datetime.now(UTC),
        merchant_id=merchant,
        subject=customer,
        data=event.model_dump(mode="json"),
    )
