"""The result backend contract: store and read result records (SPEC.md §7) by task id."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from celeriac.protocol.errors import ProtocolError
from celeriac.protocol.results import ResultRecord, decode_result, encode_result
from celeriac.protocol.serializers import JSON, dumps, get_serializer, loads
from celeriac.protocol.states import PENDING, PROPAGATE_STATES, READY_STATES, precedence

from .watch import PollingWatcher, wait_future

__all__ = [
    "ChordJoin",
    "ChordPart",
    "ResultBackend",
    "join_parts",
    "part_member",
    "pending",
    "should_replace",
]


@dataclass(frozen=True, slots=True)
class ChordPart:
    """One chord header task's final outcome (SPEC.md §7.5)."""

    group_id: str
    task_id: str
    #: The header task's ``group_index``; None sorts last (Celery's ``+inf``).
    index: int | None
    #: SUCCESS, FAILURE or REVOKED.
    state: str
    #: The return value, or the encoded exception mapping for FAILURE and REVOKED.
    result: Any
    #: Header size carried by the body signature (``chord_size``); 0 when the producer set it
    #: in the backend instead (``set_chord_size``), as Celery does with Redis.
    size: int = 0


def _nothing() -> None:
    return None


@dataclass(slots=True)
class ChordJoin:
    """Handed to the one caller that completes a chord: it sends the body, then ``release()``."""

    #: Header results in ``group_index`` order.
    results: list[Any]
    #: ``(task_id, encoded exception)`` of a header task that failed or was revoked, if any:
    #: the body must then fail with a ChordError instead of running.
    failed: tuple[str, Any] | None = None
    #: Called once the body was sent (or failed): drops the chord's bookkeeping.
    release: Callable[[], None] = _nothing


def pending(task_id: str) -> ResultRecord:
    """What a backend answers for a task it knows nothing of."""
    return ResultRecord(task_id=task_id, status=PENDING)


def should_replace(old: ResultRecord | None, new: ResultRecord) -> bool:
    """Whether ``new`` may overwrite ``old``: a finished task's record is final."""
    if old is None or old.status not in READY_STATES:
        return True
    return precedence(new.status) <= precedence(old.status) and new.status == old.status


def part_member(part: ChordPart) -> str:
    """The key a part is counted under once (Celery's ``<task_id>:<score>``)."""
    return f"{part.task_id}:{'+inf' if part.index is None else part.index}"


def join_parts(parts: Iterable[ChordPart]) -> ChordJoin:
    """The join of a complete chord: results in ``group_index`` order, the first failure."""
    ordered = sorted(parts, key=lambda p: (p.index is None, p.index or 0))
    failed = next(((p.task_id, p.result) for p in ordered if p.state in PROPAGATE_STATES), None)
    return ChordJoin([p.result for p in ordered], failed)


# The "theoretical arrival time" of the next start per limit (GCRA), for backends in one process.
_LOCAL_TAT: dict[tuple[str, str], float] = {}
_LOCAL_LOCK = threading.Lock()


class ResultBackend(ABC):
    """Where workers write result records and clients read them."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options
        #: Seconds a record is kept (None: for ever); Celery's ``result_expires``.
        self.expires: float | None = options.get("expires", 86400.0)
        #: How records are serialized (Celery's ``result_serializer``): a built-in name or
        #: one registered with ``celeriac.serialization.register``.
        self.serializer: str = options.get("serializer") or "json"
        try:
            self._content_type = get_serializer(self.serializer).content_type
        except ProtocolError as exc:
            raise ValueError(f"result_serializer: {exc.reason}") from None
        self._accept = frozenset((JSON, self._content_type))

    def encode(self, record: ResultRecord) -> bytes:
        """A record as stored, with the backend's serializer."""
        return encode_result(record, self.serializer)

    def decode(self, data: bytes) -> ResultRecord:
        """A stored record, read with the backend's serializer."""
        return decode_result(data, self._content_type, accept=self._accept)

    def encode_value(self, value: Any) -> bytes:
        """Any other stored value (a chord part), with the backend's serializer."""
        data, _, _ = dumps(value, self.serializer, path="result")
        return data

    def decode_value(self, data: bytes) -> Any:
        """A value stored by ``encode_value``."""
        return loads(data, self._content_type, accept=self._accept)

    @abstractmethod
    def store(self, record: ResultRecord) -> None:
        """Write a record, unless the task already has a final one."""

    @abstractmethod
    def get(self, task_id: str) -> ResultRecord:
        """The record of ``task_id``, or a PENDING one."""

    @abstractmethod
    def forget(self, task_id: str) -> None:
        """Delete the record of ``task_id``."""

    def cleanup(self) -> None:
        """Drop expired results, where they do not expire by themselves (Celery's
        ``backend.cleanup``, run by the ``celery.backend_cleanup`` task)."""
        return None

    def save_group(self, group_id: str, tree: Any) -> None:
        """Keep a group's result tuple (SPEC.md §7.4) under ``celery-taskset-meta-<id>``, for
        ``GroupResult.restore``; expires as task results do."""
        raise NotImplementedError(f"{type(self).__name__} cannot save groups")

    def restore_group(self, group_id: str) -> Any:
        """A saved group's result tuple, or None when none is saved under ``group_id``."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore groups")

    def delete_group(self, group_id: str) -> None:
        """Delete a saved group (its tasks' results stay)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete groups")

    #: Errors that mean "unreachable for now": a write that raised one may be retried.
    transient_errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)

    #: Whether chord parts can be counted here (the rpc:// backend cannot).
    supports_chords: bool = True

    def reply_queue(self) -> str | None:
        """The queue a client names in ``reply_to`` when results come back as messages (rpc://),
        ready to receive; None for backends that store results."""
        return None

    def store_for(
        self, record: ResultRecord, reply_to: str | None, correlation_id: str | None
    ) -> None:
        """Write the record of a task that was sent with ``reply_to``/``correlation_id``;
        backends that send results back as messages use them, the others just store."""
        self.store(record)

    def take_token(self, name: str, rate: float) -> float:
        """Take one start of ``name`` under a limit of ``rate`` per second shared by every
        worker on this backend: 0.0 when it may start now, else the seconds to wait first.

        Backends that no workers share keep the limit for this process only.
        """
        with _LOCAL_LOCK:
            now = time.monotonic()
            due = max(_LOCAL_TAT.get((self.url, name), now), now)
            if due > now:
                return due - now
            _LOCAL_TAT[(self.url, name)] = due + 1.0 / rate
            return 0.0

    def set_chord_size(self, group_id: str, size: int) -> None:
        """Record a chord's header size before its header is sent (Celery's Redis backend reads
        it from here; others take ``chord_size`` from the body signature)."""
        return None

    @abstractmethod
    def chord_part_return(self, part: ChordPart) -> ChordJoin | None:
        """Record one header task's outcome, atomically; a redelivered part counts once.

        Returns a ChordJoin to exactly one caller, the one whose part completes the chord;
        every other caller gets None.
        """

    def wait(
        self, task_id: str, timeout: float | None = None, interval: float = 0.05
    ) -> ResultRecord:
        """Block until ``task_id`` is ready; raises TimeoutError after ``timeout`` seconds.

        Backends with a notification channel (Redis pub/sub) override this polling loop.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            record = self.get(task_id)
            if record.status in READY_STATES:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} not ready after {timeout} s")
            time.sleep(delay)  # polling a store with no notification; backs off to ``interval``
            delay = min(delay * 2, interval)

    async def wait_async(self, task_id: str, timeout: float | None = None) -> ResultRecord:
        """Await until ``task_id`` is ready, never blocking the event loop; raises
        TimeoutError after ``timeout`` seconds.

        Polled from one thread per backend and process for every waiter; backends with a
        notification channel (Redis pub/sub) override this with native asyncio I/O.
        """
        watcher: PollingWatcher | None = self.__dict__.get("_polling_watcher")
        if watcher is None:
            new = PollingWatcher(self.get, transient=self.transient_errors)
            watcher = self.__dict__.setdefault("_polling_watcher", new)
        return await wait_future(watcher.watch(task_id), task_id, timeout)

    async def aclose(self) -> None:
        """Release what asyncio callers of this event loop opened (the backend stays usable
        from threads)."""
        return None

    def close(self) -> None:
        """Release connections."""
        watcher: PollingWatcher | None = self.__dict__.pop("_polling_watcher", None)
        if watcher is not None:
            watcher.close()

    def __enter__(self) -> ResultBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
