"""Schedules: interval ticks, crontab fields, and crontab across daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from celeriac.schedules import clocked, crontab, maybe_schedule, schedule

BERLIN = ZoneInfo("Europe/Berlin")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_interval_ticks_are_multiples_of_the_interval_since_the_epoch() -> None:
    every = schedule(10)
    assert every.next_after(utc(2026, 1, 1, 0, 0, 3)) == utc(2026, 1, 1, 0, 0, 10)
    assert every.next_after(utc(2026, 1, 1, 0, 0, 10)) == utc(2026, 1, 1, 0, 0, 20)  # strictly
    assert schedule(timedelta(seconds=10)) == every
    ticks = schedule(0.5).ticks_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 2))
    assert [t.timestamp() % 60 for t in ticks] == [0.5, 1.0, 1.5, 2.0]
    assert every.ticks_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 9)) == []


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_interval_refuses_what_is_not_a_positive_number(bad: object) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        schedule(bad)  # type: ignore[arg-type]


def test_crontab_fields() -> None:
    c = crontab(minute="*/15", hour="9-17/4", day_of_week="mon-fri", month_of_year="jan,jul")
    assert c.minute == {0, 15, 30, 45}
    assert c.hour == {9, 13, 17}
    assert c.day_of_week == {1, 2, 3, 4, 5}
    assert c.month_of_year == {1, 7}
    assert crontab(day_of_week=7).day_of_week == {0}  # Sunday, as 0
    assert crontab(day_of_week="fri-mon").day_of_week == {5, 6, 0, 1}
    assert crontab(minute=[5, "10"]).minute == {5, 10}
    with pytest.raises(ValueError, match="crontab hour: 24 is outside 0-23"):
        crontab(hour=24)
    with pytest.raises(ValueError, match="crontab day_of_week: 'xyz'"):
        crontab(day_of_week="xyz")


def test_crontab_next_after_in_utc() -> None:
    daily = crontab(minute=0, hour=7)
    assert daily.next_after(utc(2026, 5, 1, 6, 59, 59)) == utc(2026, 5, 1, 7)
    assert daily.next_after(utc(2026, 5, 1, 7)) == utc(2026, 5, 2, 7)
    # Both day fields must match (Celery's rule): the next Friday the 13th after May 2026.
    friday_13 = crontab(minute=0, hour=0, day_of_month=13, day_of_week="fri")
    assert friday_13.next_after(utc(2026, 5, 1)) == utc(2026, 11, 13)
    assert crontab(minute=0, hour=0, day_of_month=29, month_of_year=2).next_after(
        utc(2026, 1, 1)
    ) == utc(2028, 2, 29)
    assert (
        crontab(minute=0, hour=0, day_of_month=31, month_of_year=2).next_after(utc(2026, 1, 1))
        is None
    )


def test_crontab_reads_wall_time_in_the_zone() -> None:
    seven = crontab(minute=0, hour=7)
    assert seven.next_after(utc(2026, 1, 10), BERLIN) == utc(2026, 1, 10, 6)  # CET, +1
    assert seven.next_after(utc(2026, 7, 10), BERLIN) == utc(2026, 7, 10, 5)  # CEST, +2
    own = crontab(minute=0, hour=7, tz="America/New_York")  # its own zone wins over the app's
    assert own.next_after(utc(2026, 1, 10), BERLIN) == utc(2026, 1, 10, 12)


def test_spring_forward_a_missing_wall_time_fires_once_at_the_end_of_the_gap() -> None:
    # Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist.
    half_past_two = crontab(minute=30, hour=2)
    ticks = half_past_two.ticks_between(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12), BERLIN)
    assert ticks == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]
    # Every 15 minutes: 02:00, 02:15, 02:30, 02:45 and 03:00 all fall on one instant, once.
    quarter = crontab(minute="*/15")
    ticks = quarter.ticks_between(utc(2026, 3, 29, 0, 40), utc(2026, 3, 29, 1, 20), BERLIN)
    assert ticks == [utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 15)]


def test_fall_back_a_repeated_wall_time_fires_once_at_its_first_occurrence() -> None:
    # Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens twice.
    half_past_two = crontab(minute=30, hour=2)
    ticks = half_past_two.ticks_between(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12), BERLIN)
    assert ticks == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    hourly = crontab(minute=0)
    ticks = hourly.ticks_between(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 3, 30), BERLIN)
    # 02:00 CEST (00:00Z), then 03:00 CET (02:00Z): the second 02:00 (01:00Z) does not fire.
    assert ticks == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 2), utc(2026, 10, 25, 3)]
    # Starting inside the repeated hour does not fire its wall times again.
    assert hourly.next_after(utc(2026, 10, 25, 1, 10), BERLIN) == utc(2026, 10, 25, 2)


def test_clocked_fires_once_and_reads_naive_times_in_the_zone() -> None:
    once = clocked(datetime(2026, 6, 1, 12, 0))
    assert once.next_after(utc(2026, 1, 1), BERLIN) == utc(2026, 6, 1, 10)
    assert once.next_after(utc(2026, 6, 1, 10), BERLIN) is None
    assert isinstance(maybe_schedule(datetime(2026, 6, 1, tzinfo=UTC)), clocked)
    assert maybe_schedule(5) == schedule(5)
    with pytest.raises(TypeError, match=r"beat_schedule\['x'\]\['schedule'\]"):
        maybe_schedule("every minute", "x")
