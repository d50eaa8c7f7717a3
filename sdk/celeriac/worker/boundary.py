"""The per-message boundary: what keeps one message, one task's result or one setting from
stopping the worker or looping forever (SPEC.md §11).

Everything read from a message or a setting that becomes a timer, a delay or a rate goes
through a checker here, which refuses values outside a sane range with a reason, so no number
can overflow a timer or disable limits for other tasks.
"""

from __future__ import annotations

import math
from typing import Any

from celeriac.transports import Delivery

__all__ = [
    "DELIVERY_COUNT_HEADER",
    "MAX_DELAY",
    "MAX_TIME_LIMIT",
    "MIN_RATE",
    "BadNumber",
    "check_rate",
    "check_seconds",
    "deliveries",
    "safe_repr",
]

#: Header counting how many times a message was delivered before (RabbitMQ quorum queues set
#: it; Celeriac sets it when it gives a message back, and the Redis restorer increments it).
DELIVERY_COUNT_HEADER = "x-delivery-count"
#: Longest time limit accepted, in seconds (about 115 days): far past any real task, far below
#: what overflows a timer.
MAX_TIME_LIMIT = 10_000_000.0
#: Longest an ETA or countdown may wait, in seconds (10 years).
MAX_DELAY = 10 * 365 * 86_400.0
#: Slowest rate limit accepted, in calls per second (Celery's slowest unit: 1/h).
MIN_RATE = 1 / 3600
_REPR_MAX = 500


class BadNumber(ValueError):
    """A number from a message, a setting or a command outside its sane range."""


def safe_repr(value: Any, limit: int = _REPR_MAX) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (a hostile ``__repr__`` may)."""
    try:
        text = repr(value)
    except Exception as exc:  # anything a user's __repr__ raises
        try:
            kind = type(value).__qualname__
        except Exception:
            kind = "object"
        text = f"<{kind} whose repr raised {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_seconds(value: Any, what: str, maximum: float = MAX_TIME_LIMIT) -> float | None:
    """A duration in seconds from a message or setting: None or 0 mean none; anything that is
    not a finite number in (0, maximum] raises :class:`BadNumber` naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadNumber(f"{what} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise BadNumber(f"{what} must be a positive number of seconds, not {value!r}")
    if seconds > maximum:
        raise BadNumber(f"{what} of {value!r} s is past the largest accepted ({maximum:.0f} s)")
    return seconds or None


def check_rate(rate: float | None, what: str) -> float | None:
    """A rate in calls per second: None (no limit) or a finite number of at least 1/h."""
    if rate is None:
        return None
    if math.isnan(rate) or math.isinf(rate) or rate < MIN_RATE:
        raise BadNumber(f"{what} {rate!r}/s is outside the accepted range (at least 1/h, finite)")
    return rate


def deliveries(delivery: Delivery, flagged_only: bool = False) -> int:
    """How many times this message has been delivered, this time included (at least 1).

    The larger of what the broker counts (SQS, SQLite, memory) and the header a requeue or a
    restore carries; a header that is not a small non-negative integer counts as absent.
    ``flagged_only``: the transport does not count a redelivery (a classic RabbitMQ queue only
    flags it), so a redelivered message counts one more than its header says.
    """
    counted = delivery.deliveries or 1
    message = delivery.message
    if message is not None:
        before = message.headers.get(DELIVERY_COUNT_HEADER)
        if isinstance(before, int) and not isinstance(before, bool) and 0 <= before < 1 << 31:
            counted = max(counted, before + 1)
    if delivery.redelivered and (counted == 1 or (flagged_only and delivery.deliveries is None)):
        counted += 1
    return counted
