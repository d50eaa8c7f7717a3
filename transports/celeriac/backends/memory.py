"""``memory://`` results: in-process, for tests and eager use. Processes do not share them."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from celeriac.protocol.results import ResultRecord, decode_result, encode_result
from celeriac.protocol.states import READY_STATES

from .base import ResultBackend, pending, should_replace

__all__ = ["MemoryBackend"]


class MemoryBackend(ResultBackend):
    """Records in a dict shared by every backend opened with the same URL in this process."""

    _stores: ClassVar[dict[str, dict[str, ResultRecord]]] = {}
    _changed: ClassVar[dict[str, threading.Condition]] = {}
    _chords: ClassVar[dict[tuple[str, str], dict[int, Any]]] = {}
    _lock = threading.Lock()

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        with self._lock:
            self._records = self._stores.setdefault(url, {})
            self._cond = self._changed.setdefault(url, threading.Condition())

    def store(self, record: ResultRecord) -> None:
        # Through the serializer, as every other backend, so results behave the same here.
        record = decode_result(encode_result(record))
        with self._cond:
            if should_replace(self._records.get(record.task_id), record):
                self._records[record.task_id] = record
                self._cond.notify_all()

    def get(self, task_id: str) -> ResultRecord:
        with self._cond:
            return self._records.get(task_id) or pending(task_id)

    def chord_part_return(
        self, group_id: str, index: int, size: int, result: Any
    ) -> list[Any] | None:
        with self._cond:
            parts = self._chords.setdefault((self.url, group_id), {})
            parts[index] = result
            if len(parts) < size:
                return None
            del self._chords[(self.url, group_id)]
            return [parts[i] for i in range(size)]

    def forget(self, task_id: str) -> None:
        with self._cond:
            self._records.pop(task_id, None)

    def wait(
        self, task_id: str, timeout: float | None = None, interval: float = 0.05
    ) -> ResultRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                record = self._records.get(task_id)
                if record is not None and record.status in READY_STATES:
                    return record
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout} s")
                self._cond.wait(left)
