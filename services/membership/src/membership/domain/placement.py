"""Where a joining member sits: the first sub-group with room, a new one when all are full, or nowhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_SUBGROUP_CAPACITY = 500
DEFAULT_MAX_SUBGROUPS = 10


@dataclass(frozen=True)
class SubgroupSeats:
    number: int
    capacity: int
    member_count: int

    @property
    def has_room(self) -> bool:
        return self.member_count < self.capacity


@dataclass(frozen=True)
class SeatIn:
    """Take a seat in an existing sub-group."""

    number: int


@dataclass(frozen=True)
class OpenSubgroup:
    """Every existing sub-group is full but the set may grow: open the next one."""

    number: int


@dataclass(frozen=True)
class SetFull:
    """Every sub-group the group may have exists and is full."""

    capacity: int


Placement = SeatIn | OpenSubgroup | SetFull


def place(subgroups: Sequence[SubgroupSeats], *, capacity: int, max_subgroups: int) -> Placement:
    ordered = sorted(subgroups, key=lambda s: s.number)
    for subgroup in ordered:
        if subgroup.has_room:
            return SeatIn(subgroup.number)
    if len(ordered) < max_subgroups:
        # Numbers stay dense (1..n), so the next one is simply one past the highest.
        return OpenSubgroup((ordered[-1].number if ordered else 0) + 1)
    return SetFull(capacity=sum(s.capacity for s in ordered))
