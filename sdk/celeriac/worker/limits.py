"""Time limits, termination and rate limits for tasks running on threads."""

from __future__ import annotations

import ctypes
import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..bounds import parse_rate

__all__ = ["Running", "TokenBucket", "Watchdog", "parse_rate", "raise_in_thread"]


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Make ``exc_type`` raise inside thread ``thread_id`` at its next bytecode boundary."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )
    return bool(done == 1)


@dataclass(slots=True)
class Running:
    """A task running on a pool thread: what the watchdog and revocation act on."""

    task_id: str
    thread_id: int
    #: Called once if the task passes its hard limit: report it and free the slot.
    on_hard_limit: Callable[[], None]
    finished: bool = False
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def interrupt(self, exc_type: type[BaseException]) -> bool:
        """Raise ``exc_type`` in the task's thread if the task is still running."""
        with self.lock:
            if self.finished:
                return False
            return raise_in_thread(self.thread_id, exc_type)

    def finish(self) -> bool:
        """Mark the task done; False when it was abandoned (its outcome must be dropped)."""
        with self.lock:
            self.finished = True
            return not self.abandoned


class Watchdog:
    """One thread that fires soft and hard time limits at their deadlines."""

    def __init__(self, soft_exc: type[BaseException], hard_exc: type[BaseException]) -> None:
        self.soft_exc = soft_exc
        self.hard_exc = hard_exc
        self._heap: list[tuple[float, int, str, Running]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="celeriac-watchdog", daemon=True)
        self._thread.start()

    def watch(self, running: Running, soft: float | None, hard: float | None) -> None:
        """Fire ``soft`` and ``hard`` (seconds, checked by the worker) for ``running``."""
        now = time.monotonic()
        with self._cond:
            for kind, limit in (("soft", soft), ("hard", hard)):
                if limit:
                    self._seq += 1
                    heapq.heappush(self._heap, (now + limit, self._seq, kind, running))
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, kind, running = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    # Bounded: a wait past TIMEOUT_MAX raises, and this thread serves every task.
                    self._cond.wait(min(wait, threading.TIMEOUT_MAX, 3600.0))
                    continue
                heapq.heappop(self._heap)
                if kind == "soft":
                    running.interrupt(self.soft_exc)
                else:
                    with running.lock:
                        if running.finished:
                            continue
                        running.abandoned = True
                        raise_in_thread(running.thread_id, self.hard_exc)
                    running.on_hard_limit()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()


class TokenBucket:
    """At most ``rate`` takes per second on average, bursts up to ``capacity``."""

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token: 0.0 when one was there, else the seconds until one will be."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
