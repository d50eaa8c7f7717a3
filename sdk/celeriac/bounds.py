"""The sane ranges of the numbers a call, a message, a setting or a remote command carries.

One place for both sides: the client checks ``apply_async``/``retry``/task options here before
it sends anything, and the worker (``worker/boundary.py``) checks what it reads from a message
against the same ranges, so a value the client accepts is never one the worker refuses.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "MAX_DELAY",
    "MAX_TIME_LIMIT",
    "MIN_DELAY",
    "MIN_RATE",
    "BadNumber",
    "OutOfRange",
    "check_count",
    "check_delay",
    "check_rate",
    "check_retry_policy",
    "check_seconds",
    "check_task_options",
    "check_when",
    "parse_rate",
]

#: Longest time limit accepted, in seconds (about 115 days): far past any real task, far below
#: what overflows a timer.
MAX_TIME_LIMIT = 10_000_000.0
#: Longest an ETA or countdown may wait, in seconds (10 years).
MAX_DELAY = 10 * 365 * 86_400.0
#: Most negative countdown or relative expiry (Celery's bound: a C int of seconds).
MIN_DELAY = -2_147_483_648.0
#: Slowest rate limit accepted, in calls per second (Celery's slowest unit: 1/h).
MIN_RATE = 1 / 3600


class BadNumber(ValueError):
    """A number from a call, a message, a setting or a command outside its sane range."""


class OutOfRange(BadNumber, OverflowError):
    """A number too large (or infinite): also an ``OverflowError``, which is what Celery's
    client raises for such a countdown or expiry (from ``timedelta``)."""


def _real(value: Any, what: str, unit: str = "a number of seconds") -> float:
    """``value`` as a finite float; TypeError for a non-number, BadNumber for NaN, OutOfRange
    for an infinity."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be {unit}, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise BadNumber(f"{what} must be {unit}, not NaN")
    if math.isinf(number):
        raise OutOfRange(f"{what} must be finite, not {number}")
    return number


def check_seconds(value: Any, what: str, maximum: float = MAX_TIME_LIMIT) -> float | None:
    """A duration in seconds (a time limit): None or 0 mean none; anything that is not a
    finite number in (0, maximum] raises :class:`BadNumber` naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadNumber(f"{what} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise BadNumber(f"{what} must be a positive number of seconds, not {value!r}")
    if seconds > maximum:
        raise OutOfRange(f"{what} of {value!r} s is past the largest accepted ({maximum:.0f} s)")
    return seconds or None


def check_delay(value: Any, what: str) -> float:
    """A countdown or relative expiry in seconds: finite, at most :data:`MAX_DELAY` ahead. A
    negative one means "already" (Celery accepts it, down to :data:`MIN_DELAY`)."""
    seconds = _real(value, what)
    if seconds > MAX_DELAY:
        raise OutOfRange(f"{what} of {value!r} s is more than {MAX_DELAY:.0f} s (10 years) away")
    if seconds < MIN_DELAY:
        raise OutOfRange(f"{what} is out of range: {value!r}")  # Celery's words
    return seconds


def check_count(value: Any, what: str) -> int | None:
    """A number of times (``max_retries``, ``retries``): None, or a non-negative integer."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a whole number, not {value!r}")
    count = int(value)
    if count < 0:
        raise BadNumber(f"{what} must be 0 or more, not {value!r}")
    if count >= 1 << 31:
        raise OutOfRange(f"{what} of {value!r} is past the largest accepted ({(1 << 31) - 1})")
    return count


def check_when(value: Any, what: str, relative: bool = False) -> datetime | None:
    """An aware datetime from ``eta``/``expires`` as Celery takes them: a datetime (naive is
    UTC), an ISO 8601 string, or (``relative``: ``expires``) seconds from now. An ETA more
    than :data:`MAX_DELAY` ahead is refused, as the worker would refuse it."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadNumber(f"{what} {value[:64]!r} is not an ISO 8601 date and time") from None
    if isinstance(value, datetime):
        at = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    elif relative and not isinstance(value, bool) and isinstance(value, numbers.Real):
        seconds = _real(value, what)  # a late expiry is harmless: no upper bound but the calendar
        if seconds < MIN_DELAY:
            raise OutOfRange(f"{what} is out of range: {value!r}")  # Celery's words
        at = _from_now(seconds, what)
    else:
        kinds = "a datetime, an ISO 8601 string or seconds" if relative else "a datetime"
        raise TypeError(f"{what} must be {kinds}, not {type(value).__name__}")
    if not relative:
        try:
            ahead = (at - datetime.now(UTC)).total_seconds()
        except OverflowError:
            raise OutOfRange(f"{what} {at.isoformat()} is out of range") from None
        if ahead > MAX_DELAY:
            raise OutOfRange(f"{what} {at.isoformat()} is more than {MAX_DELAY:.0f} s away")
    return at


def _from_now(seconds: float, what: str) -> datetime:
    try:
        return datetime.now(UTC) + timedelta(seconds=seconds)
    except OverflowError:  # past year 9999: not on this calendar
        raise OutOfRange(f"{what} of {seconds!r} s is out of range") from None


def check_rate(rate: float | None, what: str) -> float | None:
    """A rate in calls per second: None (no limit) or a finite number of at least 1/h."""
    if rate is None:
        return None
    if math.isnan(rate) or math.isinf(rate) or rate < MIN_RATE:
        raise BadNumber(f"{what} {rate!r}/s is outside the accepted range (at least 1/h, finite)")
    return rate


_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(rate: str | float | int | None, what: str = "rate_limit") -> float | None:
    """Celery's rate strings (``"10/s"``, ``"100/m"``, ``"1000/h"``, ``"1.5"``: any number
    Python's ``float`` reads, then ``/s``, ``/m`` or ``/h``), or a number per second.

    Refuses (:class:`BadNumber`, a ValueError) a rate that is not a finite number of at least
    1/h, so no rate can hold a task back for longer than an hour per call."""
    if rate is None or rate == "" or rate == 0:
        return None
    if isinstance(rate, bool):
        raise BadNumber(f"{what} {rate!r}: write it as N/s, N/m or N/h")
    if isinstance(rate, numbers.Real):
        return check_rate(float(rate), what)
    if not isinstance(rate, str):
        raise BadNumber(f"{what} {type(rate).__name__}: write it as N/s, N/m or N/h")
    count, _, unit = rate.partition("/")
    try:
        value = float(count) / _PER[unit.strip() or "s"]
    except (ValueError, KeyError):
        raise BadNumber(f"{what} {rate[:64]!r}: write it as N/s, N/m or N/h") from None
    return check_rate(value, what) if value else None


def check_retry_policy(policy: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A publish retry policy (``task_publish_retry_policy``, ``retry_policy=``): a whole
    ``max_retries`` of 0 or more, intervals of 0 to :data:`MAX_DELAY` seconds."""
    if not isinstance(policy, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(policy).__name__}")
    checked = dict(policy)
    if checked.get("max_retries") is not None:
        checked["max_retries"] = check_count(checked["max_retries"], f"{what}.max_retries")
    for key in ("interval_start", "interval_step", "interval_max"):
        if checked.get(key) is not None:
            seconds = _real(checked[key], f"{what}.{key}")
            if seconds < 0:
                raise BadNumber(f"{what}.{key} must be 0 or more seconds, not {checked[key]!r}")
            if seconds > MAX_DELAY:
                raise OutOfRange(f"{what}.{key} of {checked[key]!r} s is past {MAX_DELAY:.0f} s")
    return checked


def check_task_options(options: Mapping[str, Any], what: str) -> None:
    """The numbers among a task's options (``@app.task(...)``, ``apply_async(...)``): each in
    its range, else an error naming ``what`` and the option."""
    for key in ("time_limit", "soft_time_limit"):
        if options.get(key) is not None:
            check_seconds(options[key], f"{what}: {key}")
    if options.get("max_retries") is not None:
        check_count(options["max_retries"], f"{what}: max_retries")
    for key in ("default_retry_delay", "retry_backoff_max"):
        if options.get(key) is not None:
            _non_negative_delay(options[key], f"{what}: {key}")
    backoff = options.get("retry_backoff")
    if backoff is not None and not isinstance(backoff, bool):
        _non_negative_delay(backoff, f"{what}: retry_backoff")
    for key in ("rate_limit", "global_rate_limit"):
        if options.get(key) is not None:
            parse_rate(options[key], f"{what}: {key}")
    if options.get("expires") is not None:
        check_when(options["expires"], f"{what}: expires", relative=True)


def _non_negative_delay(value: Any, what: str) -> float:
    seconds = check_delay(value, what)
    if seconds < 0:
        raise BadNumber(f"{what} must be 0 or more seconds, not {value!r}")
    return seconds
