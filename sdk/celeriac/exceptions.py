"""Exceptions users see: retries, revocation, time limits, and failures of unknown types."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CeleriacError",
    "ChordError",
    "Ignore",
    "Reject",
    "RemoteError",
    "Retry",
    "SoftTimeLimitExceeded",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "WorkerLostError",
]


class CeleriacError(Exception):
    """Base of Celeriac's own errors."""


class Retry(CeleriacError):
    """Raised by ``self.retry()``: the task was re-published to run again later."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | None = None,
    ) -> None:
        super().__init__(message or f"retry in {when}s: {exc!r}")
        self.exc = exc
        self.when = when


class Ignore(CeleriacError):
    """Raised by a task to end without a result being stored."""


class Reject(CeleriacError):
    """Raised by a task to reject its message (dead-letter it, or requeue it)."""

    def __init__(self, reason: str = "rejected by task", requeue: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.requeue = requeue


class ChordError(CeleriacError):
    """A chord's body did not run because a header task failed or was revoked."""


class TaskRevokedError(CeleriacError):
    """The task was revoked (or expired) before it finished."""


class SoftTimeLimitExceeded(CeleriacError):
    """Raised inside a task when its soft time limit passes; it may clean up and return."""


class TimeLimitExceeded(CeleriacError):
    """The task passed its hard time limit and was stopped."""


class WorkerLostError(CeleriacError):
    """The process running the task died before it finished (Celery's name)."""


class RemoteError(CeleriacError):
    """A task failed with an exception whose type cannot be imported here.

    Carries what the result record says: the type's name and module, and its arguments.
    """

    def __init__(self, exc_type: str, exc_module: str | None, args: tuple[Any, ...]) -> None:
        self.exc_type = exc_type
        self.exc_module = exc_module
        self.exc_args = args
        where = f"{exc_module}." if exc_module else ""
        super().__init__(f"{where}{exc_type}: {', '.join(map(str, args))}")
