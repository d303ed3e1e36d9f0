"""Who may join a group: required segments (any or all), excluded segments and a minimum tier rank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RuleName = Literal["required_segments", "excluded_segments", "min_tier_rank"]


@dataclass(frozen=True)
class JoinRules:
    required_segments: frozenset[str] = frozenset()
    required_mode: Literal["any", "all"] = "any"
    excluded_segments: frozenset[str] = frozenset()
    min_tier_rank: int = 0

    def requires(self, segment_key: str) -> bool:
        return segment_key in self.required_segments


@dataclass(frozen=True)
class CustomerStanding:
    """What membership knows of a customer from the segment and tier events it has seen."""

    segments: frozenset[str] = frozenset()
    tier_rank: int = 0


@dataclass(frozen=True)
class RuleFailure:
    rule: RuleName
    detail: str
    segments: tuple[str, ...] = ()
    required_tier_rank: int | None = None


def failed_rules(rules: JoinRules, standing: CustomerStanding) -> tuple[RuleFailure, ...]:
    """Every rule the customer fails, most decisive first (an exclusion cannot be fixed by buying more)."""
    failures: list[RuleFailure] = []
    excluded = sorted(rules.excluded_segments & standing.segments)
    if excluded:
        failures.append(
            RuleFailure(
                "excluded_segments", f"Customers in {', '.join(excluded)} cannot join.", tuple(excluded)
            )
        )
    if rules.required_segments:
        missing = sorted(rules.required_segments - standing.segments)
        held = rules.required_segments & standing.segments
        satisfied = bool(held) if rules.required_mode == "any" else not missing
        if not satisfied:
            wanted = "any of" if rules.required_mode == "any" else "all of"
            failures.append(
                RuleFailure(
                    "required_segments",
                    f"The customer must be in {wanted}: {', '.join(missing)}.",
                    tuple(missing),
                )
            )
    if standing.tier_rank < rules.min_tier_rank:
        failures.append(
            RuleFailure(
                "min_tier_rank",
                f"The customer's tier rank {standing.tier_rank} is below the required {rules.min_tier_rank}.",
                required_tier_rank=rules.min_tier_rank,
            )
        )
    return tuple(failures)
