"""The app's pool of publishing connections, shared by every thread and by asyncio callers.

At most ``broker_pool_limit`` connections (Celery's setting, default 10) publish an app's tasks
in a process: a ``delay()`` takes one for the length of its publish and gives it back; the I/O
thread of asyncio callers takes one for a batch of sends. A caller finding them all in use
waits for one, as Celery's producer pool does. ``None`` or 0: no pool, a connection is opened
for each publish and closed after it (Celery's meaning).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Concatenate, ParamSpec, TypeVar

from celeriac.transports import Transport

from ..config import ConfigError

__all__ = ["Producer", "ProducerPool"]

log = logging.getLogger("celeriac")
T = TypeVar("T")
P = ParamSpec("P")


class Producer:
    """One publishing connection, and the queues declared through it."""

    __slots__ = ("declared", "transport", "window")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.declared: set[str] = set()
        #: The transport's own publish window, while the I/O thread widens it for a batch.
        self.window = 0


class ProducerPool:
    """Up to ``limit`` producers opened with ``opener``, lent to one caller at a time."""

    def __init__(self, opener: Callable[[], Transport], limit: int | None) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigError(f"setting broker_pool_limit: {limit!r} is not a whole number")
        if limit is not None and limit < 0:
            raise ConfigError(f"setting broker_pool_limit: {limit!r} is below 0")
        self._opener = opener
        self.limit = limit or 0
        self._idle: list[Producer] = []
        self._all: list[Producer] = []
        self._opening = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._pid = os.getpid()
        #: The producer a thread holds for a while (the I/O thread, for a batch of sends).
        self._pinned = threading.local()
        #: Something was published through the pool since :meth:`flush_sent` last looked.
        self.sent = False

    def _reset_if_forked(self) -> None:
        # A child must not write on its parent's sockets: it opens its own.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._idle, self._all, self._opening, self._waiting = [], [], 0, 0
            self._lock = threading.Lock()
            self._freed = threading.Condition(self._lock)
            self._pinned = threading.local()

    def _take(self) -> Producer:
        if self._pid != os.getpid():
            self._reset_if_forked()
        if not self.limit:
            return Producer(self._opener())
        with self._lock:  # the common case, kept cheap: an idle one
            if self._idle:
                return self._idle.pop()
        with self._freed:
            while not self._idle and len(self._all) + self._opening >= self.limit:
                self._waiting += 1
                try:
                    self._freed.wait()
                finally:
                    self._waiting -= 1
            if self._idle:
                return self._idle.pop()
            self._opening += 1  # counted while it connects, outside the lock
        try:
            producer = Producer(self._opener())
        except BaseException:
            with self._freed:
                self._opening -= 1
                self._freed.notify_all()
            raise
        with self._freed:
            self._opening -= 1
            self._all.append(producer)
        return producer

    def _give_back(self, producer: Producer) -> None:
        if self.limit:
            with self._lock:
                if producer in self._all:  # else: the pool was closed meanwhile
                    self._idle.append(producer)
                    if self._waiting:
                        self._freed.notify_all()
                    return
        _close(producer)

    def run(
        self,
        broken: tuple[type[BaseException], ...],
        fn: Callable[Concatenate[Producer, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(producer, *args, **kwargs)`` with a producer lent for the call (this thread's
        pinned one if it holds one); one whose call raised ``broken`` is closed, not lent
        again."""
        producer: Producer | None = getattr(self._pinned, "producer", None)
        pinned = producer is not None
        if producer is None:
            producer = self._take()
        self.sent = True  # before the call: a publish that raised may still have been written
        try:
            result = fn(producer, *args, **kwargs)
        except broken:
            self.discard(producer)
            raise
        except BaseException:
            if not pinned:
                self._give_back(producer)
            raise
        if not pinned:
            self._give_back(producer)
        return result

    def discard(self, producer: Producer) -> None:
        """Close a producer whose connection broke; the next caller opens a new one."""
        if getattr(self._pinned, "producer", None) is producer:
            self._pinned.producer = None
        with self._freed:
            if producer in self._all:
                self._all.remove(producer)
                self._freed.notify_all()
        _close(producer)

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Producer]:
        """A producer for this caller alone until the block ends (this thread's pinned one, if
        it holds one)."""
        pinned: Producer | None = getattr(self._pinned, "producer", None)
        if pinned is not None:
            yield pinned
            return
        producer = self._take()
        try:
            yield producer
        finally:
            self._give_back(producer)

    def pin(self) -> Producer:
        """Take a producer for this thread until :meth:`unpin` (every ``acquire`` on this thread
        meanwhile gets it)."""
        producer: Producer | None = getattr(self._pinned, "producer", None)
        if producer is None:
            producer = self._pinned.producer = self._take()
        return producer

    def unpin(self, discard: bool = False) -> None:
        """Give this thread's pinned producer back (or close it, its connection broken)."""
        producer: Producer | None = getattr(self._pinned, "producer", None)
        if producer is not None:
            self._pinned.producer = None
            if discard:
                self.discard(producer)
            else:
                self._give_back(producer)

    def pinned(self) -> Producer | None:
        """This thread's pinned producer, if any."""
        producer: Producer | None = getattr(self._pinned, "producer", None)
        return producer

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker acknowledged every publish through the pool (a producer lent
        out is flushed once given back; this thread's pinned one at once). With ``timeout``,
        a producer still lent out after that many seconds is a TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pinned: Producer | None = getattr(self._pinned, "producer", None)
        if pinned is not None:
            pinned.transport.flush()
        with self._freed:
            waiting = [p for p in self._all if p is not pinned]
        for producer in waiting:
            with self._freed:
                while producer in self._all and producer not in self._idle:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(
                            f"a publishing connection stayed in use for {timeout:g} s"
                        )
                    self._waiting += 1
                    try:
                        self._freed.wait(left)
                    finally:
                        self._waiting -= 1
                if producer not in self._all:  # closed meanwhile: nothing left to wait for
                    continue
                self._idle.remove(producer)
            try:
                producer.transport.flush()
            finally:
                self._give_back(producer)

    def flush_sent(self, timeout: float | None = None) -> None:
        """:meth:`flush` if anything was published since the last call, else nothing (a worker
        calls it before it acks tasks: what they sent is confirmed first)."""
        if self.sent:
            self.sent = False  # before flushing: a publish from now on is seen by the next call
            self.flush(timeout)

    def close(self) -> None:
        """Close every producer not in use (those in use close when given back)."""
        with self._freed:
            idle, self._idle, self._all = self._idle, [], []
            self._freed.notify_all()
        for producer in idle:
            _close(producer)

    def __len__(self) -> int:
        """How many producers are open (or opening)."""
        return len(self._all) + self._opening


def _close(producer: Producer) -> None:
    try:
        producer.transport.close()
    except Exception as exc:
        log.warning("closing a publishing connection: %s", exc)
