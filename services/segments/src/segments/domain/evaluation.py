"""Incremental evaluation: given one customer's facts and what just changed, their new memberships.

Built-in segments are recomputed every time (they are cheap); a merchant segment is re-evaluated only
if the event touched a fact its rule reads (for orders and favorites: one of the products or categories
its rule filters on), or a segment its rule names changed in this same pass.
Segments are visited dependencies first, so `in_segment` always sees the membership of this pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .builtins import DEFAULT_POLICY, Policy, builtin_segments, lifecycle_stage
from .facts import CustomerFacts, Lifecycle
from .rules import Dependencies, Predicate, Rule, activity_labels, compile_predicate, dependencies


@dataclass(frozen=True)
class CompiledSegment:
    key: str
    predicate: Predicate
    depends_on: Dependencies


class CompiledSegments(tuple[CompiledSegment, ...]):
    """A merchant's compiled segments in dependency order, indexed by the facts their rules read: an
    event about a customer visits the few segments reading what it touched, not all of them."""

    _reading: dict[str, tuple[int, ...]]
    _naming_segments: tuple[int, ...]
    names_segments: bool

    def __new__(cls, ordered: Iterable[CompiledSegment]) -> CompiledSegments:
        self = super().__new__(cls, ordered)
        reading: dict[str, list[int]] = {}
        for position, segment in enumerate(self):
            for fact in segment.depends_on.facts:
                reading.setdefault(fact, []).append(position)
        self._reading = {fact: tuple(positions) for fact, positions in reading.items()}
        self._naming_segments = tuple(i for i, s in enumerate(self) if s.depends_on.segments)
        self.names_segments = bool(self._naming_segments)
        return self

    def candidates(self, facts: Iterable[str]) -> list[CompiledSegment]:
        """Those reading one of `facts` or naming a segment (which may change in the same pass), in
        dependency order."""
        positions = set(self._naming_segments)
        for fact in facts:
            positions.update(self._reading.get(fact, ()))
        return [self[i] for i in sorted(positions)]


def compile_segments(rules: Mapping[str, Rule], now: datetime) -> CompiledSegments:
    """Compile a merchant's segments, ordered so every segment comes after the segments it names."""
    return CompiledSegments(
        CompiledSegment(key, compile_predicate(rules[key], now), dependencies(rules[key]))
        for key in dependency_order({k: dependencies(r).segments for k, r in rules.items()})
    )


def dependency_order(references: Mapping[str, Iterable[str]]) -> list[str]:
    ordered: list[str] = []
    state: dict[str, str] = {}
    for key in sorted(references):
        _visit(key, references, state, ordered)
    return ordered


# A module function rather than a closure calling itself: such a closure is a reference cycle (with
# `references` in it) that only the garbage collector frees, made on every batch, and workers run the
# collector rarely (meadow_runtime.heap).
def _visit(
    key: str, references: Mapping[str, Iterable[str]], state: dict[str, str], ordered: list[str]
) -> None:
    if state.get(key) == "done":
        return
    if state.get(key) == "visiting":
        raise CyclicSegments(key)
    state[key] = "visiting"
    for ref in references.get(key, ()):
        if ref in references:
            _visit(ref, references, state, ordered)
    state[key] = "done"
    ordered.append(key)


class CyclicSegments(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"segment {key!r} depends on itself through in_segment")
        self.key = key


def touched_by_order(lines: Iterable[tuple[str, str]], channel: str | None) -> set[str]:
    """What a paid order can change: the nodes reading its lines' products and categories, and the
    profile's channel when it carries one (a customer without a channel adopts the order's)."""
    touched = activity_labels("orders", lines)
    if channel is not None:
        touched.add("profile")
    return touched


@dataclass(frozen=True)
class Outcome:
    customer_id: str
    lifecycle_before: Lifecycle
    lifecycle_after: Lifecycle
    entered: frozenset[str]
    exited: frozenset[str]
    # every membership after (None: not known, e.g. an outcome built by hand)
    members: frozenset[str] | None = None


def reevaluate(
    facts: CustomerFacts,
    now: datetime,
    segments: CompiledSegments,
    touched: frozenset[str] | None,
    policy: Policy = DEFAULT_POLICY,
) -> Outcome:
    """`facts.segments` holds the memberships before; `touched=None` re-evaluates every segment."""
    before = frozenset(facts.segments)
    stage_before = facts.lifecycle
    stage = lifecycle_stage(facts, now, policy)
    builtins = builtin_segments(facts, now, policy, stage=stage)
    # the merchant's own memberships: their keys have no colon, every built-in's has (builtins module)
    members = {key for key in before if ":" not in key}
    members |= builtins
    # One view over the live set: `in_segment` sees memberships decided earlier in this pass.
    live = facts.evaluated(stage, members)
    # Segments naming others are visited whatever was touched, and evaluated only when a segment they
    # name changed in this pass; the others were picked for a fact they read.
    naming = segments.names_segments and touched is not None
    changed = set(before ^ members) if naming else set()
    kinds = touched if touched is None or stage == stage_before else touched | {"lifecycle"}
    for segment in segments if kinds is None else segments.candidates(kinds):
        depends_on = segment.depends_on
        if (
            naming
            and depends_on.segments
            and depends_on.facts.isdisjoint(kinds)  # type: ignore[arg-type]
            and depends_on.segments.isdisjoint(changed)
        ):
            continue
        key = segment.key
        is_member = segment.predicate(live)
        if is_member != (key in members):
            changed.add(key)
            if is_member:
                members.add(key)
            else:
                members.discard(key)
    final = frozenset(members)
    return Outcome(
        customer_id=facts.customer_id,
        lifecycle_before=stage_before,
        lifecycle_after=stage,
        entered=final - before,
        exited=before - final,
        members=final,
    )
