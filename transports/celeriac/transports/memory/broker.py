"""The state of one in-process broker: queues, delayed messages, unsettled deliveries."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Broker", "Entry", "broker_for"]


@dataclass(order=True)
class Entry:
    """A stored message: ordered by priority (higher first), then by arrival."""

    sort_key: tuple[int, int]
    envelope: bytes = field(compare=False)
    priority: int = field(compare=False, default=0)
    redelivered: bool = field(compare=False, default=False)


@dataclass
class Held:
    """A delivery handed to a consumer and not yet settled."""

    queue: str
    entry: Entry
    owner: int
    deadline: float | None


class Broker:
    """Queues as heaps under one condition variable; thread-safe."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queues: dict[str, list[Entry]] = {}
        self.delayed: list[tuple[float, int, str, Entry]] = []
        self.held: dict[str, Held] = {}
        self.subscribers: dict[str, list[object]] = {}
        self._seq = itertools.count()

    def declare(self, queue: str) -> None:
        with self.cond:
            self.queues.setdefault(queue, [])

    def entry(self, envelope: bytes, priority: int, redelivered: bool = False) -> Entry:
        return Entry((-priority, next(self._seq)), envelope, priority, redelivered)

    def put(self, queue: str, entry: Entry, delay: float | None = None) -> None:
        with self.cond:
            if queue not in self.queues:
                raise KeyError(queue)
            if delay and delay > 0:
                heapq.heappush(
                    self.delayed, (time.monotonic() + delay, next(self._seq), queue, entry)
                )
            else:
                heapq.heappush(self.queues[queue], entry)
            self.cond.notify_all()

    def housekeep(self, now: float) -> float | None:
        """Move due delayed messages; return held ones past their deadline. Caller holds cond.

        Returns the time until the next delayed message is due, if any.
        """
        while self.delayed and self.delayed[0][0] <= now:
            _, _, queue, entry = heapq.heappop(self.delayed)
            heapq.heappush(self.queues[queue], entry)
        for tag, held in list(self.held.items()):
            if held.deadline is not None and held.deadline <= now:
                del self.held[tag]
                held.entry.redelivered = True
                heapq.heappush(self.queues[held.queue], held.entry)
        return self.delayed[0][0] - now if self.delayed else None


_brokers: dict[str, Broker] = {}
_lock = threading.Lock()


def broker_for(name: str) -> Broker:
    """The broker every transport opened with this URL in this process shares."""
    with _lock:
        return _brokers.setdefault(name, Broker())
