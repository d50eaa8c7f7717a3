"""Bounded waits for tests: poll a condition until it holds or a deadline passes.

For state another process or a server holds, there is no event to block on; polling with a
deadline is the synchronisation, and a timeout fails the test naming what never happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["collect", "eventually"]

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
    detail: Callable[[], object] | None = None,
) -> T:
    """``check()``'s first truthy value, polled every ``interval`` s for at most ``timeout`` s.

    On timeout the failure names ``what``, followed by ``detail()`` when given (a worker's log,
    the state last seen): computed only then, so it may be costly.
    """
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: its bounded wait is the pause between polls
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"{what} not reached in {timeout} s"
            raise AssertionError(message if detail is None else f"{message}:\n{detail()}")
        tick.wait(interval)


def settled(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Like :func:`eventually`, for a check whose value does not matter."""
    eventually(lambda: bool(check()), timeout, what)


def collect(
    next_item: Callable[..., T | None], until: Callable[[list[T]], bool], timeout: float
) -> list[T]:
    """Items from ``next_item(timeout=...)`` until ``until(items)`` holds or ``timeout`` s pass
    (the caller asserts on what came)."""
    items: list[T] = []
    deadline = time.monotonic() + timeout
    while not until(items) and time.monotonic() < deadline:
        found = next_item(timeout=min(0.5, max(deadline - time.monotonic(), 0.0)))
        if found is not None:
            items.append(found)
    return items
