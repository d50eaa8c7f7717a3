"""The per-message boundary: what keeps one message, one task's result or one setting from
stopping the worker or looping forever (SPEC.md §11).

Everything read from a message or a setting that becomes a timer, a delay or a rate goes
through a checker of ``celeriac.bounds`` (the ranges the client checks too), which refuses
values outside a sane range with a reason, so no number can overflow a timer or disable limits
for other tasks.
"""

from __future__ import annotations

from typing import Any

from celeriac.transports import Delivery

# The ranges are shared with the client side (apply_async, retry, task options).
from ..bounds import MAX_DELAY, MAX_TIME_LIMIT, MIN_RATE, BadNumber, check_rate, check_seconds

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
_REPR_MAX = 500


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
