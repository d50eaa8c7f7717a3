"""When periodic tasks run: ``schedule`` (every N seconds), ``crontab`` and ``clocked`` (once).

The names follow ``celery.schedules``::

    from celeriac.schedules import crontab, schedule

    app.conf.beat_schedule["report"] = {"task": "proj.report", "schedule": crontab(hour=7)}
    app.add_periodic_task(schedule(30.0), report.s(), name="every 30 s")

Every schedule answers one question, :meth:`BaseSchedule.next_after`: the first scheduled
instant strictly after a given one. The answer depends on nothing but the arguments, so every
beat process computes the same ticks, and a tick is named by its scheduled time (what the lock
store keeps as an entry's last tick, see :mod:`celeriac.beat`).

* ``schedule(10)`` ticks at every multiple of 10 seconds since the Unix epoch (UTC), not
  ``10 s after the last run`` as Celery does: beats that take over from each other agree on
  the ticks.
* ``crontab(...)`` reads wall-clock time in a time zone (its ``tz``, else the app's
  ``timezone`` setting). Days match when both ``day_of_month`` and ``day_of_week`` match (as
  in Celery, not cron's either-or). Daylight saving time: a wall time that does not exist
  (spring forward) fires once, at the first valid instant after the gap; a wall time that
  exists twice (fall back) fires once, at its first occurrence.
* ``clocked(datetime)`` fires once; a naive datetime is read in the app's time zone.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "BaseSchedule",
    "clocked",
    "crontab",
    "maybe_schedule",
    "schedule",
    "solar",
    "zone_of",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)
#: How far ahead a crontab looks for a matching day (leap days and 31sts need years).
_SEARCH_DAYS = 366 * 8 + 2
_DAY_NAMES = {
    name: number
    for number, names in enumerate(
        [
            ("sun", "sunday"),
            ("mon", "monday"),
            ("tue", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
        ]
    )
    for name in names
}
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1
    )
}


def zone_of(name: str | tzinfo | None) -> tzinfo:
    """A tzinfo from a zone name (``"Europe/Berlin"``), a tzinfo, or None (UTC)."""
    if name is None:
        return UTC
    if isinstance(name, tzinfo):
        return name
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (the timezone setting or a crontab's tz); "
            "use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from exc


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


class BaseSchedule(abc.ABC):
    """A rule for when a periodic task runs."""

    @abc.abstractmethod
    def next_after(self, after: datetime, tz: tzinfo = UTC) -> datetime | None:
        """The first tick strictly after ``after`` (aware), in UTC; None when there is none.

        ``tz`` is the app's time zone, for schedules that read wall-clock time.
        """

    def ticks_between(
        self, after: datetime, until: datetime, tz: tzinfo = UTC, limit: int = 100_000
    ) -> list[datetime]:
        """The ticks in ``(after, until]``, oldest first (at most ``limit``)."""
        found: list[datetime] = []
        moment = self.next_after(after, tz)
        while moment is not None and moment <= _utc(until) and len(found) < limit:
            found.append(moment)
            moment = self.next_after(moment, tz)
        return found

    def remaining_estimate(self, now: datetime, tz: tzinfo = UTC) -> timedelta | None:
        """Time from ``now`` to the next tick (Celery's name), None when none is left."""
        moment = self.next_after(now, tz)
        return None if moment is None else moment - _utc(now)


class schedule(BaseSchedule):
    """Every ``run_every`` (seconds or a timedelta), at the multiples of it since the epoch."""

    def __init__(self, run_every: float | timedelta, relative: bool = False) -> None:
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else run_every
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError(
                f"an interval schedule needs a positive number of seconds: {run_every!r}"
            )
        self.run_every = timedelta(seconds=seconds)
        self.relative = relative  # accepted for Celery's signature; ticks are always aligned
        self._step = max(1, round(seconds * 1_000_000))

    def next_after(self, after: datetime, tz: tzinfo = UTC) -> datetime | None:
        since = (_utc(after) - EPOCH) // _MICRO
        return EPOCH + (since // self._step + 1) * self._step * _MICRO

    def ticks_between(
        self, after: datetime, until: datetime, tz: tzinfo = UTC, limit: int = 100_000
    ) -> list[datetime]:
        first = (((_utc(after) - EPOCH) // _MICRO) // self._step + 1) * self._step
        last = (((_utc(until) - EPOCH) // _MICRO) // self._step) * self._step
        count = min(limit, max(0, (last - first) // self._step + 1))
        return [EPOCH + (first + i * self._step) * _MICRO for i in range(count)]

    def __repr__(self) -> str:
        return f"<freq: {self.run_every.total_seconds():g}s>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, schedule) and other._step == self._step

    def __hash__(self) -> int:
        return hash(("schedule", self._step))


class clocked(BaseSchedule):
    """Once, at ``at`` (naive: in the app's time zone)."""

    def __init__(self, at: datetime) -> None:
        if not isinstance(at, datetime):
            raise TypeError(f"clocked needs a datetime, got {at!r}")
        self.at = at

    def when(self, tz: tzinfo = UTC) -> datetime:
        """The instant, in UTC."""
        return _utc(self.at if self.at.tzinfo else self.at.replace(tzinfo=tz))

    def next_after(self, after: datetime, tz: tzinfo = UTC) -> datetime | None:
        moment = self.when(tz)
        return moment if moment > _utc(after) else None

    def __repr__(self) -> str:
        return f"<clocked: {self.at.isoformat()}>"


def _parse_part(part: str, low: int, high: int, names: dict[str, int], what: str) -> set[int]:
    """One comma-separated piece: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, ``a/n``."""
    text, _, step_text = part.partition("/")
    try:
        step = int(step_text) if step_text else 1
    except ValueError:
        raise ValueError(f"crontab {what}: bad step in {part!r}") from None
    if step < 1:
        raise ValueError(f"crontab {what}: the step in {part!r} must be at least 1")

    def number(token: str) -> int:
        token = token.strip().lower()
        if token in names:
            return names[token]
        try:
            value = int(token)
        except ValueError:
            raise ValueError(f"crontab {what}: {token!r} is not a number or a name") from None
        if what == "day_of_week" and value == 7:
            return 0  # 7 is Sunday too, as in cron
        if not low <= value <= high:
            raise ValueError(f"crontab {what}: {value} is outside {low}-{high}")
        return value

    if text.strip() == "*":
        start, end = low, high
    elif "-" in text:
        first, _, last = text.partition("-")
        start, end = number(first), number(last)
    else:
        start = number(text)
        end = high if step_text else start
    if end < start:  # a range that wraps, such as fri-mon
        return set(range(start, high + 1, step)) | set(range(low, end + 1, step))
    return set(range(start, end + 1, step))


def _parse_field(
    spec: int | str | Iterable[int | str], low: int, high: int, what: str, names: dict[str, int]
) -> frozenset[int]:
    if isinstance(spec, bool):
        raise ValueError(f"crontab {what}: {spec!r} is not a valid value")
    parts: list[str]
    if isinstance(spec, int):
        parts = [str(spec)]
    elif isinstance(spec, str):
        parts = [p for p in spec.replace(" ", "").split(",") if p]
    else:
        parts = [str(p) for p in spec]
    if not parts:
        raise ValueError(f"crontab {what}: empty")
    values: set[int] = set()
    for part in parts:
        values |= _parse_part(part, low, high, names, what)
    return frozenset(values)


class crontab(BaseSchedule):
    """Wall-clock times, as cron: ``crontab(minute=0, hour="*/3", day_of_week="mon-fri")``.

    Fields take numbers, strings (``"*"``, ``"*/15"``, ``"1,3"``, ``"1-5"``, ``"mon-fri"``)
    or lists. ``day_of_week``: 0 (or 7) is Sunday, as in Celery. ``tz``: the zone the fields
    are read in (default: the app's ``timezone`` setting).
    """

    def __init__(
        self,
        minute: int | str | Iterable[int | str] = "*",
        hour: int | str | Iterable[int | str] = "*",
        day_of_week: int | str | Iterable[int | str] = "*",
        day_of_month: int | str | Iterable[int | str] = "*",
        month_of_year: int | str | Iterable[int | str] = "*",
        tz: str | tzinfo | None = None,
    ) -> None:
        self._orig = (minute, hour, day_of_week, day_of_month, month_of_year)
        self.minute = _parse_field(minute, 0, 59, "minute", {})
        self.hour = _parse_field(hour, 0, 23, "hour", {})
        self.day_of_week = _parse_field(day_of_week, 0, 6, "day_of_week", _DAY_NAMES)
        self.day_of_month = _parse_field(day_of_month, 1, 31, "day_of_month", {})
        self.month_of_year = _parse_field(month_of_year, 1, 12, "month_of_year", _MONTH_NAMES)
        self.tz = None if tz is None else zone_of(tz)
        self._hours = sorted(self.hour)
        self._minutes = sorted(self.minute)

    def _day_matches(self, day: date) -> bool:
        return (
            day.month in self.month_of_year
            and day.day in self.day_of_month
            and (day.weekday() + 1) % 7 in self.day_of_week
        )

    @staticmethod
    def instant(wall: datetime, zone: tzinfo) -> datetime:
        """The UTC instant a naive wall time in ``zone`` fires at: its first occurrence when
        it exists twice, the first valid instant after the gap when it does not exist."""
        moment = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        probe = wall
        while moment.astimezone(zone).replace(tzinfo=None) != probe:
            probe += _MINUTE  # inside a gap: walk to the first wall time that exists
            moment = probe.replace(tzinfo=zone, fold=0).astimezone(UTC)
        return moment

    def next_after(self, after: datetime, tz: tzinfo = UTC) -> datetime | None:
        zone = self.tz or tz
        after = _utc(after)
        local = after.astimezone(zone).replace(tzinfo=None)
        floor = local.replace(second=0, microsecond=0)
        day = floor.date()
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in self._hours:
                    if day == floor.date() and hour < floor.hour:
                        continue
                    for minute in self._minutes:
                        wall = datetime.combine(day, time(hour, minute))
                        if wall < floor:
                            continue
                        moment = self.instant(wall, zone)
                        if moment > after:
                            return moment
            day += timedelta(days=1)
        return None

    def __repr__(self) -> str:
        names = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._orig, strict=True))
        return f"<crontab: {fields}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, crontab) and (
            other.minute,
            other.hour,
            other.day_of_week,
            other.day_of_month,
            other.month_of_year,
            other.tz,
        ) == (
            self.minute,
            self.hour,
            self.day_of_week,
            self.day_of_month,
            self.month_of_year,
            self.tz,
        )

    def __hash__(self) -> int:
        return hash((self.minute, self.hour, self.day_of_week, self.day_of_month))


def maybe_schedule(value: Any, name: str = "?") -> BaseSchedule:
    """A schedule from what ``beat_schedule`` may hold: seconds, a timedelta, a datetime
    (once), or a schedule object."""
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, timedelta) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        return schedule(value)
    if isinstance(value, datetime):
        return clocked(value)
    raise TypeError(
        f"beat_schedule[{name!r}]['schedule'] is {value!r}; use seconds (10.0), a timedelta, "
        "a datetime (once), or celeriac.schedules.crontab(...)"
    )


class solar:
    """Celery's sunrise/sunset schedule, which Celeriac does not have: making one is an error
    that says so (rather than a schedule that never fires)."""

    def __init__(self, event: str, lat: float, lon: float, **kwargs: Any) -> None:
        raise NotImplementedError(
            f"solar({event!r}, ...): Celeriac has no solar schedules; use crontab() at the "
            "times you need, or clocked() for single moments"
        )
