"""``memory://`` results: in-process, for tests and eager use. Processes do not share them."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from celeriac.protocol.result_tuples import decode_group, encode_group
from celeriac.protocol.results import ResultRecord
from celeriac.protocol.states import READY_STATES

from .base import (
    ChordJoin,
    ChordPart,
    ResultBackend,
    join_parts,
    part_member,
    pending,
    should_replace,
)

__all__ = ["MemoryBackend"]


class MemoryBackend(ResultBackend):
    """Records in a dict shared by every backend opened with the same URL in this process."""

    _stores: ClassVar[dict[str, dict[str, ResultRecord]]] = {}
    _changed: ClassVar[dict[str, threading.Condition]] = {}
    _chords: ClassVar[dict[tuple[str, str], dict[str, ChordPart]]] = {}
    _chord_sizes: ClassVar[dict[tuple[str, str], int]] = {}
    _chords_done: ClassVar[set[tuple[str, str]]] = set()
    _groups: ClassVar[dict[tuple[str, str], bytes]] = {}
    _lock = threading.Lock()

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        with self._lock:
            self._records = self._stores.setdefault(url, {})
            self._cond = self._changed.setdefault(url, threading.Condition())

    def store(self, record: ResultRecord) -> None:
        # Through the serializer, as every other backend, so results behave the same here.
        record = self.decode(self.encode(record))
        with self._cond:
            if should_replace(self._records.get(record.task_id), record):
                self._records[record.task_id] = record
                self._cond.notify_all()

    def get(self, task_id: str) -> ResultRecord:
        with self._cond:
            return self._records.get(task_id) or pending(task_id)

    def set_chord_size(self, group_id: str, size: int) -> None:
        with self._cond:
            self._chord_sizes[(self.url, group_id)] = size
            self._chords_done.discard((self.url, group_id))

    def chord_part_return(self, part: ChordPart) -> ChordJoin | None:
        key = (self.url, part.group_id)
        with self._cond:
            if key in self._chords_done:
                return None  # a late copy of a header task of a chord already joined
            parts = self._chords.setdefault(key, {})
            parts.setdefault(part_member(part), part)
            size = part.size or self._chord_sizes.get(key, 0)
            if not size or len(parts) < size:
                return None
            del self._chords[key]
            self._chord_sizes.pop(key, None)
            self._chords_done.add(key)
        return join_parts(parts.values())

    def forget(self, task_id: str) -> None:
        with self._cond:
            self._records.pop(task_id, None)

    def save_group(self, group_id: str, tree: Any) -> None:
        with self._lock:
            self._groups[(self.url, group_id)] = encode_group(tree)

    def restore_group(self, group_id: str) -> Any:
        with self._lock:
            saved = self._groups.get((self.url, group_id))
        return None if saved is None else decode_group(saved)

    def delete_group(self, group_id: str) -> None:
        with self._lock:
            self._groups.pop((self.url, group_id), None)

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
