"""The result backend contract: store and read result records (SPEC.md §7) by task id."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

from celeriac.protocol.results import ResultRecord
from celeriac.protocol.states import PENDING, READY_STATES, precedence

__all__ = ["ResultBackend", "pending", "should_replace"]


def pending(task_id: str) -> ResultRecord:
    """What a backend answers for a task it knows nothing of."""
    return ResultRecord(task_id=task_id, status=PENDING)


def should_replace(old: ResultRecord | None, new: ResultRecord) -> bool:
    """Whether ``new`` may overwrite ``old``: a finished task's record is final."""
    if old is None or old.status not in READY_STATES:
        return True
    return precedence(new.status) <= precedence(old.status) and new.status == old.status


class ResultBackend(ABC):
    """Where workers write result records and clients read them."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options
        #: Seconds a record is kept (None: for ever); Celery's ``result_expires``.
        self.expires: float | None = options.get("expires", 86400.0)

    @abstractmethod
    def store(self, record: ResultRecord) -> None:
        """Write a record, unless the task already has a final one."""

    @abstractmethod
    def get(self, task_id: str) -> ResultRecord:
        """The record of ``task_id``, or a PENDING one."""

    @abstractmethod
    def forget(self, task_id: str) -> None:
        """Delete the record of ``task_id``."""

    @abstractmethod
    def chord_part_return(
        self, group_id: str, index: int, size: int, result: Any
    ) -> list[Any] | None:
        """Record part ``index`` of a chord of ``size`` parts, atomically.

        Returns every part's result in order when this call completes the chord (exactly one
        caller gets them), else None.
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

    def close(self) -> None:  # noqa: B027 - most backends have nothing to release
        """Release connections."""

    def __enter__(self) -> ResultBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
