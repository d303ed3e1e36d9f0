"""Ordering of projected facts: events may arrive late, twice or replayed; the newest fact wins."""

from __future__ import annotations

from datetime import datetime


def supersedes(incoming_as_of: datetime, current_as_of: datetime | None) -> bool:
    """A fact replaces the stored one only if strictly newer; an equal time is a replay and is ignored."""
    return current_as_of is None or incoming_as_of > current_as_of
