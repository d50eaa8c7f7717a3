"""The state of one in-process broker: queues, delayed messages, deliveries held by consumers.

Everything is guarded by one plain (non-reentrant) lock, so a garbage-collected consumer can tell
whether it may return its deliveries at once (the lock is free) or must leave them to the next
housekeeping (the lock is held, perhaps by the very thread the collector interrupted).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import TransportError

__all__ = ["Broker", "Holder", "Message", "broker_for", "broker_name"]

#: Priorities are clamped to this range, as on SQLite (SPEC.md §6.7, §6.8).
MAX_PRIORITY = 9


class Message:
    """A stored envelope (SPEC.md §6.1 bytes) and where it sorts: priority, then ready time."""

    __slots__ = ("deliveries", "envelope", "key", "redelivered")

    def __init__(self, envelope: bytes, priority: int, ready_at: float, seq: int) -> None:
        self.envelope = envelope
        # Higher priority first, then the time it became ready, then arrival: SQLite's order.
        self.key = (-priority, ready_at, seq)
        self.redelivered = False
        #: Times it was handed out before (a requeue or a released hold counts one).
        self.deliveries = 0


#: A queue is a heap of (key, message); keys are unique, so messages are never compared.
Heap = list[tuple[tuple[int, float, int], Message]]


@dataclass
class Holder:
    """The deliveries one consumer holds, and until when its hold lasts without a fetch."""

    deadline: float | None
    held: dict[int, tuple[str, Message]] = field(default_factory=dict)


class Inbox(Protocol):
    """What a broadcast subscriber offers the broker."""

    def deliver(self, envelope: bytes) -> None: ...


class Broker:
    """Queues as heaps under one condition variable; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queues: dict[str, Heap] = {}
        self.delayed: list[tuple[float, int, str, Message]] = []
        self.holders: dict[int, Holder] = {}
        self.subscribers: dict[str, weakref.WeakSet[Inbox]] = {}
        self._abandoned: deque[int] = deque()
        self._seq = itertools.count()
        self.tags = itertools.count(1)

    # -- callers hold the lock --------------------------------------------------------------------

    def message(self, envelope: bytes, priority: int, ready_at: float) -> Message:
        return Message(envelope, min(max(priority, 0), MAX_PRIORITY), ready_at, next(self._seq))

    def heap(self, queue: str) -> Heap:
        """The ready messages of a declared queue."""
        heap = self.queues.get(queue)
        if heap is None:
            raise TransportError(
                f"memory broker: queue {queue!r} was not declared; call declare_queue first"
            )
        return heap

    def put(self, queue: str, message: Message, delay: float | None = None) -> None:
        heap = self.heap(queue)
        if delay is not None and delay > 0:
            heapq.heappush(self.delayed, (message.key[1], next(self._seq), queue, message))
        else:
            heapq.heappush(heap, (message.key, message))
        self.cond.notify_all()

    def give_back(self, queue: str, message: Message) -> None:
        """Return a delivered message to the place its key gives it (the front, usually)."""
        message.redelivered = True
        message.deliveries += 1
        heapq.heappush(self.queues.setdefault(queue, []), (message.key, message))

    def release(self, holder: Holder) -> None:
        """Give back everything ``holder`` holds."""
        for queue, message in holder.held.values():
            self.give_back(queue, message)
        holder.held.clear()
        self.cond.notify_all()

    def housekeep(self, now: float) -> float | None:
        """Move due delayed messages, give back lapsed holds; seconds until the next such event."""
        while self._abandoned:
            holder = self.holders.pop(self._abandoned.popleft(), None)
            if holder is not None:
                self.release(holder)
        while self.delayed and self.delayed[0][0] <= now:
            _, _, queue, message = heapq.heappop(self.delayed)
            heapq.heappush(self.queues.setdefault(queue, []), (message.key, message))
        upcoming = [self.delayed[0][0]] if self.delayed else []
        for holder in self.holders.values():
            if holder.deadline is None or not holder.held:
                continue
            if holder.deadline <= now:
                self.release(holder)
            else:
                upcoming.append(holder.deadline)
        return min(upcoming) - now if upcoming else None

    # -- any thread, lock not held ----------------------------------------------------------------

    def abandon(self, owner: int) -> None:
        """A consumer was garbage-collected without close(): give back what it held.

        May run inside the collector on a thread that already holds the lock, so it never waits.
        """
        if self.lock.acquire(blocking=False):
            try:
                holder = self.holders.pop(owner, None)
                if holder is not None:
                    self.release(holder)
            finally:
                self.lock.release()
        else:
            self._abandoned.append(owner)  # the next housekeeping returns them

    def declare(self, queue: str) -> None:
        with self.lock:
            self.queues.setdefault(queue, [])

    def subscribe(self, exchange: str, inbox: Inbox) -> None:
        with self.lock:
            self.subscribers.setdefault(exchange, weakref.WeakSet()).add(inbox)

    def unsubscribe(self, exchange: str, inbox: Inbox) -> None:
        with self.lock:
            self.subscribers.get(exchange, weakref.WeakSet()).discard(inbox)

    def broadcast(self, exchange: str, envelope: bytes) -> None:
        with self.lock:
            inboxes = list(self.subscribers.get(exchange, ()))
        for inbox in inboxes:
            inbox.deliver(envelope)


_brokers: dict[str, Broker] = {}
_lock = threading.Lock()


def broker_name(url: str) -> str:
    """``memory://``, ``memory:///`` -> ``""``; ``memory://name/`` -> ``"name"`` (query ignored)."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    return rest.split("?", 1)[0].strip("/")


def broker_for(url: str) -> Broker:
    """The broker every transport opened with this URL in this process shares."""
    name = broker_name(url)
    with _lock:
        broker = _brokers.get(name)
        if broker is None:
            broker = _brokers[name] = Broker()
        return broker
