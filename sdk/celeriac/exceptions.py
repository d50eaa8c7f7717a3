"""Exceptions users see, under Celery's names and in Celery's hierarchy (``celery.exceptions``):
retries, revocation, time limits, registration and configuration errors, and failures of
unknown types."""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "AlreadyRegistered",
    "AlwaysEagerIgnored",
    "BackendError",
    "CDeprecationWarning",
    "CPendingDeprecationWarning",
    "CeleriacError",
    "CeleryError",
    "CeleryWarning",
    "ChordError",
    "FixupWarning",
    "Ignore",
    "ImproperlyConfigured",
    "IncompleteStream",
    "InvalidTaskError",
    "MaxRetriesExceededError",
    "NotConfigured",
    "NotRegistered",
    "QueueNotFound",
    "Reject",
    "RemoteError",
    "Retry",
    "SecurityError",
    "SoftTimeLimitExceeded",
    "TaskError",
    "TaskPredicate",
    "TaskRevokedError",
    "Terminated",
    "TimeLimitExceeded",
    "TimeoutError",
    "WorkerLostError",
    "WorkerShutdown",
    "WorkerTerminate",
]


class CeleriacError(Exception):
    """Base of Celeriac's own errors."""


#: Celery's name for the base class.
CeleryError = CeleriacError


class CeleryWarning(UserWarning):
    """Base of Celeriac's warnings."""


class CPendingDeprecationWarning(PendingDeprecationWarning):
    """Something that will be deprecated."""


class CDeprecationWarning(DeprecationWarning):
    """Something deprecated."""


class AlwaysEagerIgnored(CeleryWarning):
    """A ``task_always_eager`` option was ignored by ``send_task``."""


class FixupWarning(CeleryWarning):
    """A framework integration (Django) could not be set up."""


class NotConfigured(CeleryWarning):
    """Celeriac has not been configured and runs on its defaults."""


class TaskPredicate(CeleriacError):
    """Base of the exceptions that say what happens to a task's message."""


class Retry(TaskPredicate):
    """Raised by ``self.retry()``: the task was re-published to run again later."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | None = None,
        is_eager: bool = False,
        sig: Any = None,
        **_: Any,
    ) -> None:
        # Celery's arguments (itself, the cause, when), so its repr is Celery's too.
        super().__init__(self, exc, when)
        self.message = message
        self.exc = exc
        self.when = when
        self.is_eager = is_eager
        self.sig = sig

    def humanize(self) -> str:
        """When the retry runs: ``in 2s`` or ``at <datetime>``."""
        return f"in {self.when}s" if isinstance(self.when, int | float) else f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc is not None:
            return f"Retry {self.humanize()}: {self.exc!r}"
        return f"Retry {self.humanize()}"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.message, self.exc, self.when)


class Ignore(TaskPredicate):
    """Raised by a task to end without a result being stored."""


class Reject(TaskPredicate):
    """Raised by a task to reject its message (dead-letter it, or requeue it)."""

    def __init__(self, reason: Any = "rejected by task", requeue: bool = False) -> None:
        super().__init__(reason, requeue)  # Celery's arguments, so the stored form is Celery's
        self.reason = reason
        self.requeue = requeue

    def __repr__(self) -> str:
        return f"reject requeue={self.requeue}: {self.reason}"  # Celery's, as events show it


class ImproperlyConfigured(CeleriacError):
    """The configuration is invalid."""


class SecurityError(CeleriacError):
    """A message failed a security check (signature, content type)."""


class TaskError(CeleriacError):
    """Base of the errors about a task."""


class MaxRetriesExceededError(TaskError):
    """A task called ``retry()`` after using up its ``max_retries``."""

    def __init__(self, *args: Any, task_args: Any = None, task_kwargs: Any = None) -> None:
        super().__init__(*args)
        self.task_args = task_args
        self.task_kwargs = task_kwargs


class NotRegistered(KeyError, TaskError):
    """No task of this name is registered with the app."""


class AlreadyRegistered(TaskError):
    """Another function is already registered under this task name."""


class TimeoutError(TaskError, builtins.TimeoutError):
    """A result did not arrive in time (also a built-in ``TimeoutError``)."""


class IncompleteStream(TaskError):
    """``collect()`` reached a result that is not ready, without ``intermediate=True``."""


class QueueNotFound(KeyError, TaskError):
    """A task was routed to a queue that is not defined."""


class InvalidTaskError(TaskError):
    """A task message is malformed."""


class ChordError(TaskError):
    """A chord's body did not run because a header task failed or was revoked."""


class BackendError(CeleriacError):
    """The result backend failed."""


class TaskRevokedError(CeleriacError):
    """The task was revoked (or expired) before it finished."""


class SoftTimeLimitExceeded(CeleriacError):
    """Raised inside a task when its soft time limit passes; it may clean up and return."""


class TimeLimitExceeded(CeleriacError):
    """The task passed its hard time limit and was stopped."""


class WorkerLostError(Exception):
    """The process running the task died."""


class Terminated(Exception):
    """The task was terminated (revoked with ``terminate=True``)."""


class WorkerShutdown(SystemExit):
    """Raised to ask the worker for a warm shutdown."""


class WorkerTerminate(SystemExit):
    """Raised to ask the worker for a cold shutdown."""


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
