"""When a post goes out: cron in the merchant's zone, "best time" from activity, caps and quiet hours.

Everything here works on aware datetimes and zone names; callers pass `now` in, nothing reads a clock.
Local wall-clock times are turned into instants through UTC so that a time skipped by a DST jump moves
forward (02:30 on a spring-forward night becomes 03:30) and an ambiguous one takes its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_BEST_SLOTS: tuple[time, ...] = (time(9, 30), time(12, 0), time(20, 0), time(21, 0))
CRON_HORIZON = timedelta(days=366 * 5)
MAX_PLACEMENT_STEPS = 400


class SchedulingError(ValueError):
    """A schedule that can never be honoured; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SchedulingError("timezone", f"unknown time zone {name!r}") from error


def at_local(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The instant a local wall-clock time names; skipped times move forward by the DST gap."""
    naive = datetime.combine(day, wall)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def next_cron_fire(expression: str, tz_name: str, after: datetime) -> datetime:
    """The first fire strictly after `after`, evaluated in the merchant's zone; UTC result."""
    tz = zone(tz_name)
    if not croniter.is_valid(expression):
        raise SchedulingError("cron", f"{expression!r} is not a valid cron expression")
    iterator = croniter(expression, after.astimezone(tz))
    try:
        fire: datetime = iterator.get_next(datetime)
    except (StopIteration, ValueError, KeyError) as error:  # croniter's way of saying "no such day"
        raise SchedulingError("cron", f"{expression!r} never fires") from error
    if fire - after > CRON_HORIZON:
        raise SchedulingError("cron", f"{expression!r} never fires within five years")
    return fire.astimezone(UTC)


def best_time(hourly_activity: Mapping[int, int], tz_name: str, now: datetime) -> datetime:
    """The next start of the group's busiest local hour, or the next default slot without history.

    Ties go to the earliest hour of the day, so the choice is stable.
    """
    tz = zone(tz_name)
    local_now = now.astimezone(tz)
    if any(count > 0 for count in hourly_activity.values()):
        busiest = max(range(24), key=lambda hour: (hourly_activity.get(hour, 0), -hour))
        slots: Sequence[time] = (time(busiest, 0),)
    else:
        slots = DEFAULT_BEST_SLOTS
    for day_offset in range(3):
        day = local_now.date() + timedelta(days=day_offset)
        for slot in slots:
            candidate = at_local(day, slot, tz)
            if candidate > local_now:
                return candidate.astimezone(UTC)
    raise AssertionError("a slot always exists within three days")  # pragma: no cover


@dataclass(frozen=True)
class GroupRules:
    """A group's push limits: at most `max_posts_per_day` per local day, nothing inside quiet hours."""

    max_posts_per_day: int | None = 3
    quiet_start: time | None = None
    quiet_end: time | None = None

    def in_quiet_hours(self, wall: time) -> bool:
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= wall < self.quiet_end
        return wall >= self.quiet_start or wall < self.quiet_end  # the window wraps midnight


@dataclass(frozen=True)
class Move:
    reason: str  # "quiet_hours" or "frequency_cap"
    group_id: str
    from_at: datetime
    to_at: datetime
    detail: str


@dataclass(frozen=True)
class Placement:
    at: datetime
    moves: tuple[Move, ...] = ()

    @property
    def rescheduled(self) -> bool:
        return bool(self.moves)


def _end_of_quiet(local: datetime, rules: GroupRules, tz: ZoneInfo) -> datetime:
    assert rules.quiet_end is not None
    day = local.date()
    if rules.quiet_end <= local.time().replace(tzinfo=None):
        day += timedelta(days=1)
    return at_local(day, rules.quiet_end, tz)


def place(
    desired: datetime,
    tz_name: str,
    rules_by_group: Mapping[str, GroupRules],
    taken_by_group: Mapping[str, Iterable[datetime]],
) -> Placement:
    """The earliest instant at or after `desired` that every target group's rules allow.

    Inside quiet hours the post moves to the end of the quiet window; on a local day that is already
    at its cap it moves to the same wall-clock time the next day (the merchant chose that time of day).
    Both checks repeat until every group is satisfied.
    """
    tz = zone(tz_name)
    taken_days: dict[str, dict[date, int]] = {}
    for group_id, instants in taken_by_group.items():
        per_day: dict[date, int] = {}
        for instant in instants:
            day = instant.astimezone(tz).date()
            per_day[day] = per_day.get(day, 0) + 1
        taken_days[group_id] = per_day
    candidate = desired.astimezone(tz)
    moves: list[Move] = []
    for _ in range(MAX_PLACEMENT_STEPS):
        moved = False
        for group_id, rules in sorted(rules_by_group.items()):
            if rules.in_quiet_hours(candidate.time().replace(tzinfo=None)):
                target = _end_of_quiet(candidate, rules, tz)
                moves.append(
                    Move(
                        "quiet_hours",
                        group_id,
                        candidate.astimezone(UTC),
                        target.astimezone(UTC),
                        f"{rules.quiet_start:%H:%M}–{rules.quiet_end:%H:%M} are the group's quiet hours",
                    )
                )
                candidate, moved = target, True
                break
            count = taken_days.get(group_id, {}).get(candidate.date(), 0)
            if rules.max_posts_per_day is not None and count >= rules.max_posts_per_day:
                wall = candidate.time().replace(tzinfo=None)
                target = at_local(candidate.date() + timedelta(days=1), wall, tz)
                moves.append(
                    Move(
                        "frequency_cap",
                        group_id,
                        candidate.astimezone(UTC),
                        target.astimezone(UTC),
                        f"{candidate.date().isoformat()} already has {count} of "
                        f"{rules.max_posts_per_day} posts",
                    )
                )
                candidate, moved = target, True
                break
        if not moved:
            return Placement(candidate.astimezone(UTC), tuple(moves))
    raise SchedulingError("publish_at", "no slot satisfies the groups' caps and quiet hours")
