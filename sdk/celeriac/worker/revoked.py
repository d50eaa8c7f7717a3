"""The ids of revoked tasks a worker remembers: bounded, with expiry, as Celery bounds them."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator

__all__ = ["RevokedSet"]

#: Celery's bounds for a worker's revoked ids (``REVOKES_MAX``, ``REVOKE_EXPIRES``).
MAX_REVOKED = 50_000
REVOKED_EXPIRES = 10_800.0


class RevokedSet:
    """At most ``maxlen`` ids, each forgotten ``expires`` seconds after its revoke; the oldest
    go first when full. Shared by reference with the pools, never copied per job."""

    def __init__(self, maxlen: int = MAX_REVOKED, expires: float = REVOKED_EXPIRES) -> None:
        self.maxlen = maxlen
        self.expires = expires
        self._ids: OrderedDict[str, float] = OrderedDict()

    def add(self, task_id: str) -> None:
        """Remember ``task_id`` (again: its expiry starts over)."""
        now = time.monotonic()
        self._ids[task_id] = now + self.expires
        self._ids.move_to_end(task_id)
        self._purge(now)

    def update(self, ids: Iterable[str]) -> None:
        """Remember each of ``ids``."""
        for task_id in ids:
            self.add(task_id)

    def _purge(self, now: float) -> None:
        ids = self._ids
        while ids and (len(ids) > self.maxlen or next(iter(ids.values())) <= now):
            ids.popitem(last=False)

    def __contains__(self, task_id: object) -> bool:
        due = self._ids.get(task_id) if isinstance(task_id, str) else None
        return due is not None and due > time.monotonic()

    def __iter__(self) -> Iterator[str]:
        now = time.monotonic()
        return iter([i for i, due in self._ids.items() if due > now])

    def __len__(self) -> int:
        self._purge(time.monotonic())
        return len(self._ids)
