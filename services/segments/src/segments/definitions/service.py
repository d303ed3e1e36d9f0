"""Saving segments (validated, cycle-free) and recomputing them in full with the compiled SQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text

from meadow_contracts import SegmentEntered, SegmentExited, new_event_id
from meadow_runtime.errors import Conflict, NotFound, Problem

from ..domain.evaluation import CyclicSegments, dependency_order
from ..domain.rules import (
    InSegment,
    InvalidRule,
    Rule,
    RuleProblem,
    dependencies,
    parse_rule,
    rule_to_json,
    walk,
)
from ..domain.sql import compile_sql
from ..uow import SegmentsUnitOfWork
from .repository import StoredSegment

# The keys built-in segments can have; matched whole (`fullmatch`: `$` would let a trailing newline by).
BUILTIN_KEY = re.compile(
    r"lifecycle:(new|repurchase|non_repurchase|problem)|advocacy:(fan|spreader|distributor)"
    r"|rfm:[rfm]:[1-5]|tag:(gender|age_band|channel|size|preference|spending_power):.+"
)


def invalid_rule(problems: Sequence[RuleProblem]) -> Problem:
    return Problem(
        422,
        "Rule is not valid",
        f"{problems[0].pointer}: {problems[0].detail}",
        type_="validation-error",
        errors=[{"pointer": p.pointer, "detail": p.detail} for p in problems],
    )


async def validated_rule(
    uow: SegmentsUnitOfWork, merchant: str, raw: dict[str, Any], saving_key: str | None = None
) -> Rule:
    """Parse the rule and check what it names exists, without cycles; 422 points at the bad node."""
    try:
        rule = parse_rule(raw)
    except InvalidRule as error:
        raise invalid_rule(error.problems) from error
    stored = {s.key: s for s in await uow.definitions.all_of(merchant)}
    problems = [
        RuleProblem(f"{pointer}/segment", f"no segment {node.segment!r} for this merchant")
        for pointer, node in walk(rule)
        if isinstance(node, InSegment)
        and node.segment not in stored
        and not BUILTIN_KEY.fullmatch(node.segment)
    ]
    if problems:
        raise invalid_rule(problems)
    if saving_key is not None:
        references: dict[str, Any] = {k: _references(s.rule) for k, s in stored.items()}
        references[saving_key] = dependencies(rule).segments
        try:
            dependency_order(references)
        except CyclicSegments as error:
            pointer = next(
                (
                    p
                    for p, n in walk(rule)
                    if isinstance(n, InSegment) and _leads_to(references, n.segment, saving_key)
                ),
                "/rule",
            )
            raise invalid_rule(
                [RuleProblem(f"{pointer}/segment" if pointer != "/rule" else pointer, str(error))]
            ) from error
    return rule


def _leads_to(references: Mapping[str, Iterable[str]], start: str, target: str) -> bool:
    """Whether `start` names `target`, itself or through the segments it names: the reference of the
    rule being saved that closes a cycle."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        key = pending.pop()
        if key == target:
            return True
        if key not in seen:
            seen.add(key)
            pending.extend(references.get(key, ()))
    return False


def _references(raw: dict[str, Any]) -> frozenset[str]:
    return dependencies(parse_rule(raw)).segments


@dataclass(frozen=True)
class Recomputed:
    entered: int
    exited: int
    member_count: int


async def create_segment(
    uow: SegmentsUnitOfWork, merchant: str, key: str, name: str, description: str, raw_rule: dict[str, Any]
) -> tuple[StoredSegment, Recomputed]:
    await uow.definitions.lock_definitions_of(merchant)
    rule = await validated_rule(uow, merchant, raw_rule, saving_key=key)
    now = datetime.now(UTC)
    segment = StoredSegment(
        id=new_event_id(),
        merchant_id=merchant,
        key=key,
        name=name,
        description=description,
        rule=rule_to_json(rule),
        version=1,
        created_at=now,
        updated_at=now,
    )
    if not await uow.definitions.add(segment):
        raise Conflict("Segment key taken", f"This merchant already has a segment {key!r}.")
    return segment, await recompute(uow, segment, now)


async def update_segment(
    uow: SegmentsUnitOfWork, merchant: str, key: str, name: str, description: str, raw_rule: dict[str, Any]
) -> tuple[StoredSegment, Recomputed]:
    await uow.definitions.lock_definitions_of(merchant)
    current = await uow.definitions.get(merchant, key)
    if current is None:
        raise NotFound("segment", key)
    rule = await validated_rule(uow, merchant, raw_rule, saving_key=key)
    now = datetime.now(UTC)
    segment = replace(
        current,
        name=name,
        description=description,
        rule=rule_to_json(rule),
        version=current.version + 1,
        updated_at=now,
    )
    await uow.definitions.replace(segment)
    result = await recompute(uow, segment, now)
    await recompute_dependents(uow, merchant, key, now)
    return segment, result


async def delete_segment(uow: SegmentsUnitOfWork, merchant: str, key: str) -> None:
    await uow.definitions.lock_definitions_of(merchant)
    current = await uow.definitions.get(merchant, key)
    if current is None:
        raise NotFound("segment", key)
    users = [s.key for s in await uow.definitions.all_of(merchant) if key in _references(s.rule)]
    if users:
        raise Conflict(
            "Segment in use", f"Segments {users} refer to {key!r}; change them first.", used_by=users
        )
    now = datetime.now(UTC)
    members = sorted(await uow.definitions.members_of(merchant, key))
    await uow.facts.exit_segments(merchant, [(key, c) for c in members])
    for customer in members:
        uow.outbox.add(
            SegmentExited(segment_id=current.id, segment_key=key, customer_id=customer, exited_at=now),
            merchant_id=merchant,
            subject=customer,
        )
    await uow.definitions.remove(merchant, key)


async def matching_customers(
    uow: SegmentsUnitOfWork, merchant: str, rule: Rule, now: datetime, limit: int | None = None
) -> list[str]:
    compiled = compile_sql(rule, now)
    # Semi-joins hash their subquery only if it fits in work_mem; a recompute should never fall back
    # to probing the subquery per customer.
    await uow.session.execute(text("SET LOCAL work_mem = '256MB'"))
    query = compiled.select_members() + " ORDER BY c.customer_id" + (f" LIMIT {int(limit)}" if limit else "")
    result = await uow.session.execute(text(query), {"merchant": merchant, **compiled.params})
    return [row[0] for row in result]


async def preview(
    uow: SegmentsUnitOfWork, merchant: str, raw: dict[str, Any], sample_size: int
) -> tuple[int, list[str]]:
    rule = await validated_rule(uow, merchant, raw)
    compiled = compile_sql(rule, datetime.now(UTC))
    await uow.session.execute(text("SET LOCAL work_mem = '256MB'"))
    count = await uow.session.execute(
        text(f"SELECT count(*) FROM ({compiled.select_members()}) AS matching"),
        {"merchant": merchant, **compiled.params},
    )
    sample = await uow.session.execute(
        text(compiled.select_members() + " ORDER BY c.customer_id LIMIT :sample_size"),
        {"merchant": merchant, "sample_size": sample_size, **compiled.params},
    )
    return int(count.scalar_one()), [row[0] for row in sample]


async def recompute(uow: SegmentsUnitOfWork, segment: StoredSegment, now: datetime) -> Recomputed:
    """Full recompute: the SQL's answer becomes the membership; each difference emits one event."""
    merchant, key = segment.merchant_id, segment.key
    new = set(await matching_customers(uow, merchant, parse_rule(segment.rule), now))
    old = await uow.definitions.members_of(merchant, key)
    entered, exited = sorted(new - old), sorted(old - new)
    await uow.facts.enter_segments(merchant, [(key, c) for c in entered], now)
    await uow.facts.exit_segments(merchant, [(key, c) for c in exited])
    for customer in entered:
        uow.outbox.add(
            SegmentEntered(segment_id=segment.id, segment_key=key, customer_id=customer, entered_at=now),
            merchant_id=merchant,
            subject=customer,
        )
    for customer in exited:
        uow.outbox.add(
            SegmentExited(segment_id=segment.id, segment_key=key, customer_id=customer, exited_at=now),
            merchant_id=merchant,
            subject=customer,
        )
    return Recomputed(len(entered), len(exited), len(new))


async def recompute_saved(uow: SegmentsUnitOfWork, merchant: str, key: str, now: datetime) -> Recomputed:
    """A manual recompute of a saved segment, and of the segments that refer to it, as a save does; under
    the definitions' lock, so no evaluation in flight writes the same memberships meanwhile."""
    await uow.definitions.lock_definitions_of(merchant)
    segment = await uow.definitions.get(merchant, key)
    if segment is None:
        raise NotFound("segment", key)
    result = await recompute(uow, segment, now)
    await recompute_dependents(uow, merchant, key, now)
    return result


async def recompute_dependents(
    uow: SegmentsUnitOfWork, merchant: str, changed_key: str, now: datetime
) -> None:
    stored = {s.key: s for s in await uow.definitions.all_of(merchant)}
    references = {k: _references(s.rule) for k, s in stored.items()}
    affected = {changed_key}
    for key in dependency_order(references):
        if key != changed_key and not references[key].isdisjoint(affected):
            await recompute(uow, stored[key], now)
            affected.add(key)


async def segment_exists(uow: SegmentsUnitOfWork, merchant: str, key: str) -> UUID | None:
    """The stored segment's id, None for a built-in one; 404 for a key that is neither."""
    if BUILTIN_KEY.fullmatch(key):
        return None
    stored = await uow.definitions.get(merchant, key)
    if stored is None:
        raise NotFound("segment", key)
    return stored.id
