from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from content.domain.scheduling import (
    GroupRules,
    SchedulingError,
    at_local,
    best_time,
    next_cron_fire,
    place,
)

SH = "Asia/Shanghai"
NY = "America/New_York"
BERLIN = "Europe/Berlin"


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(UTC)  # type: ignore[misc]


def test_cron_fires_in_the_merchants_zone() -> None:
    after = local(SH, 2026, 3, 1, 10, 0)
    assert next_cron_fire("30 20 * * *", SH, after) == local(SH, 2026, 3, 1, 20, 30)
    assert next_cron_fire("30 20 * * *", SH, after) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_cron_keeps_wall_clock_across_dst() -> None:
    before_jump = local(NY, 2026, 3, 7, 21, 0)
    first = next_cron_fire("0 9 * * *", NY, before_jump)
    second = next_cron_fire("0 9 * * *", NY, first)
    assert first == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert second - first == timedelta(hours=24)
    assert next_cron_fire("0 9 * * *", NY, local(NY, 2026, 3, 6, 21, 0)) == datetime(
        2026, 3, 7, 14, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 *"])
def test_cron_that_never_fires_is_refused(expression: str) -> None:
    with pytest.raises(SchedulingError) as caught:
        next_cron_fire(expression, SH, datetime(2026, 1, 1, tzinfo=UTC))
    assert caught.value.field == "cron"


def test_invalid_cron_and_zone_are_refused() -> None:
    with pytest.raises(SchedulingError):
        next_cron_fire("every day", SH, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(SchedulingError) as caught:
        next_cron_fire("0 9 * * *", "Mars/Olympus", datetime(2026, 1, 1, tzinfo=UTC))
    assert caught.value.field == "timezone"


def test_best_time_without_history_uses_default_slots() -> None:
    assert best_time({}, SH, local(SH, 2026, 5, 1, 8, 0)) == local(SH, 2026, 5, 1, 9, 30)
    assert best_time({}, SH, local(SH, 2026, 5, 1, 10, 0)) == local(SH, 2026, 5, 1, 12, 0)
    assert best_time({}, SH, local(SH, 2026, 5, 1, 13, 0)) == local(SH, 2026, 5, 1, 20, 0)
    assert best_time({}, SH, local(SH, 2026, 5, 1, 21, 30)) == local(SH, 2026, 5, 2, 9, 30)


def test_best_time_picks_the_busiest_hour() -> None:
    histogram = {8: 3, 19: 40, 22: 39}
    assert best_time(histogram, SH, local(SH, 2026, 5, 1, 8, 0)) == local(SH, 2026, 5, 1, 19, 0)
    assert best_time(histogram, SH, local(SH, 2026, 5, 1, 19, 30)) == local(SH, 2026, 5, 2, 19, 0)


def test_skipped_local_time_moves_forward() -> None:
    # 02:30 does not exist in New York on 2026-03-08.
    assert at_local(datetime(2026, 3, 8).date(), time(2, 30), ZoneInfo(NY)).astimezone(UTC) == datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC
    )


QUIET = GroupRules(max_posts_per_day=3, quiet_start=time(22, 0), quiet_end=time(8, 0))


def test_allowed_post_stays_put() -> None:
    desired = local(SH, 2026, 5, 1, 12, 0)
    placement = place(desired, SH, {"g": QUIET}, {"g": []})
    assert placement.at == desired
    assert not placement.rescheduled


def test_quiet_hours_move_to_their_end_in_a_dst_free_zone() -> None:
    placement = place(local(SH, 2026, 5, 1, 23, 15), SH, {"g": QUIET}, {})
    assert placement.at == local(SH, 2026, 5, 2, 8, 0)
    assert [m.reason for m in placement.moves] == ["quiet_hours"]
    early = place(local(SH, 2026, 5, 1, 6, 0), SH, {"g": QUIET}, {})
    assert early.at == local(SH, 2026, 5, 1, 8, 0)


def test_quiet_hours_across_spring_forward() -> None:
    # 23:00 EST on 7 March; quiet ends 08:00 EDT on 8 March, which is 12:00 UTC (not 13:00).
    placement = place(local(NY, 2026, 3, 7, 23, 0), NY, {"g": QUIET}, {})
    assert placement.at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_quiet_hours_across_fall_back_in_berlin() -> None:
    # Berlin leaves summer time on 25 October 2026: 08:00 CET is 07:00 UTC.
    placement = place(local(BERLIN, 2026, 10, 24, 22, 30), BERLIN, {"g": QUIET}, {})
    assert placement.at == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_frequency_cap_moves_to_the_same_time_next_day() -> None:
    taken = [local(SH, 2026, 5, 1, h, 0) for h in (9, 12, 18)]
    placement = place(local(SH, 2026, 5, 1, 20, 0), SH, {"g": QUIET}, {"g": taken})
    assert placement.at == local(SH, 2026, 5, 2, 20, 0)
    assert [m.reason for m in placement.moves] == ["frequency_cap"]
    assert "3 of 3" in placement.moves[0].detail


def test_frequency_cap_counts_local_days_across_dst() -> None:
    # Three posts on 7 March (EST) already; the next 20:00 is on 8 March, EDT: 00:00 UTC on the 9th.
    taken = [local(NY, 2026, 3, 7, h, 0) for h in (9, 12, 19)]
    placement = place(local(NY, 2026, 3, 7, 20, 0), NY, {"g": QUIET}, {"g": taken})
    assert placement.at == datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
    # A post at 23:30 UTC on the 8th is 19:30 EDT on the 8th, so it counts for that day, not the 9th.
    busy_8th = [datetime(2026, 3, 8, 23, 30, tzinfo=UTC)] * 3
    assert place(local(NY, 2026, 3, 8, 9, 0), NY, {"g": QUIET}, {"g": busy_8th}).at == local(
        NY, 2026, 3, 9, 9, 0
    )


def test_every_target_group_is_satisfied() -> None:
    loose = GroupRules(max_posts_per_day=None)
    capped = GroupRules(max_posts_per_day=1)
    taken = {"b": [local(SH, 2026, 5, 1, 9, 0)], "a": [local(SH, 2026, 5, 2, 9, 0)]}
    placement = place(local(SH, 2026, 5, 1, 10, 0), SH, {"a": capped, "b": capped, "c": loose}, taken)
    assert placement.at == local(SH, 2026, 5, 3, 10, 0)
    assert {m.group_id for m in placement.moves} == {"a", "b"}


def test_cap_then_quiet_hours_chain() -> None:
    rules = GroupRules(max_posts_per_day=1, quiet_start=time(0, 0), quiet_end=time(9, 0))
    # Fully booked day, then the same wall time (07:00) next day is quiet: ends at 09:00.
    placement = place(local(SH, 2026, 5, 1, 10, 0), SH, {"g": rules}, {"g": [local(SH, 2026, 5, 1, 10, 0)]})
    assert placement.at == local(SH, 2026, 5, 2, 10, 0)
    placement = place(local(SH, 2026, 5, 1, 7, 0), SH, {"g": rules}, {"g": [local(SH, 2026, 5, 1, 10, 0)]})
    assert [m.reason for m in placement.moves] == ["quiet_hours", "frequency_cap"]
    assert placement.at == local(SH, 2026, 5, 2, 9, 0)
