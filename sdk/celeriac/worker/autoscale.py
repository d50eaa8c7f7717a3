"""The autoscaler (``celeriac worker --autoscale MAX,MIN``), as Celery's: the pool starts with MIN
slots, grows up to MAX while the worker holds more tasks than it runs at once, and shrinks back
towards MIN once it has held fewer for ``AUTOSCALE_KEEPALIVE`` seconds (30 by default)."""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

__all__ = ["Autoscaler", "parse_autoscale"]

#: Most slots a pool may be scaled to (as remote control's resizing).
MAX_CONCURRENCY = 1_000


class Scaled(Protocol):
    """What the autoscaler reads and changes in a worker."""

    concurrency: int

    def held(self) -> int:
        """Tasks received and not settled yet (running or waiting)."""

    def scale_to(self, concurrency: int) -> bool:
        """Resize the pool; False when it refuses now (a prefork pool with too few idle)."""


def parse_autoscale(value: Any) -> tuple[int, int]:
    """``"MAX,MIN"`` (or ``"MAX"``: MIN is 1) as (max, min), checked."""
    parts = [p.strip() for p in str(value).split(",")]
    try:
        high = int(parts[0])
        low = int(parts[1]) if len(parts) > 1 and parts[1] else 1
    except ValueError:
        raise ValueError(f"autoscale {value!r}: write it as MAX,MIN (two integers)") from None
    if len(parts) > 2 or not 1 <= low <= high <= MAX_CONCURRENCY:
        raise ValueError(f"autoscale {value!r}: MAX,MIN with 1 <= MIN <= MAX <= {MAX_CONCURRENCY}")
    return high, low


def _keepalive() -> float:
    raw = os.environ.get("AUTOSCALE_KEEPALIVE", "30")
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"AUTOSCALE_KEEPALIVE={raw!r}: a number of seconds") from None
    if not 0 <= seconds <= 86_400:
        raise ValueError(f"AUTOSCALE_KEEPALIVE={raw!r}: from 0 to 86400 seconds")
    return seconds


class Autoscaler:
    """Scales ``worker``'s pool between ``low`` and ``high``; ``tick`` runs in the loop."""

    def __init__(self, worker: Scaled, high: int, low: int) -> None:
        self.worker = worker
        self.max, self.min = high, low
        self.keepalive = _keepalive()
        self._last_up = time.monotonic()
        self._next = 0.0

    def tick(self, now: float) -> None:
        """At most once a second: grow to the tasks held (up to max), or shrink towards them
        (down to min) once no grow happened for ``keepalive`` seconds."""
        if now < self._next:
            return
        self._next = now + 1.0
        held, slots = self.worker.held(), self.worker.concurrency
        wanted = min(held, self.max)
        if wanted > slots:
            if self.worker.scale_to(wanted):
                self._last_up = now
            return
        wanted = max(held, self.min)
        if wanted < slots and now - self._last_up > self.keepalive:
            self.worker.scale_to(wanted)

    def update(self, high: int | None, low: int | None) -> tuple[int, int]:
        """New bounds (``autoscale`` remote command); the pool is brought within them now."""
        high = self.max if high is None else high
        low = self.min if low is None else low
        if not 1 <= low <= high <= MAX_CONCURRENCY:
            raise ValueError(f"autoscale max={high} min={low}: need 1 <= min <= max")
        self.max, self.min = high, low
        slots = self.worker.concurrency
        if slots > high:
            self.worker.scale_to(high)
        elif slots < low:
            self.worker.scale_to(low)
            self._last_up = time.monotonic()
        return high, low

    def info(self) -> dict[str, int]:
        """Celery's ``stats`` ``autoscaler`` entry."""
        return {
            "max": self.max,
            "min": self.min,
            "current": self.worker.concurrency,
            "qty": self.worker.held(),
        }
