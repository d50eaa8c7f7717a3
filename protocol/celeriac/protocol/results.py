"""Result records (SPEC.md §6): what a worker stores for a task, as Celery's backends store it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from . import serializers
from .errors import ValidationError
from .limits import DEFAULT_LIMITS, Limits
from .states import EXCEPTION_STATES
from .validate import parse_time

__all__ = [
    "CELERY_EXCEPTIONS",
    "EncodedException",
    "ResultRecord",
    "celery_exc_module",
    "chord_keys",
    "decode_result",
    "encode_result",
    "group_key",
    "result_key",
]

TASK_KEY_PREFIX = "celery-task-meta-"
GROUP_KEY_PREFIX = "celery-taskset-meta-"
# Extended fields, written when the backend is configured with ``result_extended``.
_EXTENDED = ("name", "args", "kwargs", "worker", "retries", "queue")
_CORE = frozenset(
    ("status", "result", "traceback", "children", "date_done", "task_id", "group_id", "parent_id")
)


def result_key(task_id: str) -> str:
    """The key (Redis, SQLite, ...) under which a task's result record is stored."""
    return TASK_KEY_PREFIX + task_id


def group_key(group_id: str) -> str:
    """The key under which a group's saved result set is stored."""
    return GROUP_KEY_PREFIX + group_id


def chord_keys(group_id: str) -> tuple[str, str, str]:
    """The Redis keys of a chord's bookkeeping: finished parts, extra-task counter, size."""
    base = group_key(group_id)
    return base + ".j", base + ".t", base + ".s"


#: The exception classes Celery 5.x exports from ``celery.exceptions`` (SPEC.md §7.3). A record
#: names that module for them, so a Celery client rebuilds Celery's own class (its
#: ``exception_to_python`` looks the module up in ``sys.modules``; a look-alike fails
#: ``isinstance``).
CELERY_EXCEPTIONS = frozenset(
    (
        "AlreadyRegistered",
        "BackendError",
        "BackendGetMetaError",
        "BackendStoreError",
        "CeleryError",
        "ChordError",
        "Ignore",
        "ImproperlyConfigured",
        "IncompleteStream",
        "InvalidTaskError",
        "MaxRetriesExceededError",
        "NotConfigured",
        "NotRegistered",
        "OperationalError",
        "QueueNotFound",
        "Reject",
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
    )
)
_OWN_MODULES = ("celeriac.exceptions", "billiard.exceptions")


def celery_exc_module(exc_type: str, exc_module: str | None) -> str | None:
    """The module a record names for ``exc_type``: Celery's for the exceptions Celery defines."""
    if exc_module in _OWN_MODULES and exc_type in CELERY_EXCEPTIONS:
        return "celery.exceptions"
    return exc_module


@dataclass(frozen=True, slots=True)
class EncodedException:
    """An exception as a result record carries it: type name, module and its arguments."""

    exc_type: str
    exc_message: tuple[Any, ...]
    exc_module: str | None = "builtins"

    @classmethod
    def from_exception(cls, exc: BaseException) -> EncodedException:
        """Describe a live exception (its arguments must be serializable)."""
        name = type(exc).__qualname__
        return cls(name, tuple(exc.args), celery_exc_module(name, type(exc).__module__))

    def to_wire(self) -> dict[str, Any]:
        """The mapping stored in the ``result`` field (Celery's module for Celery's exceptions)."""
        return {
            "exc_type": self.exc_type,
            "exc_message": list(self.exc_message),
            "exc_module": celery_exc_module(self.exc_type, self.exc_module),
        }


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One task's stored state and outcome."""

    task_id: str
    status: str
    result: Any = None
    traceback: str | None = None
    children: Sequence[Any] = ()
    date_done: datetime | None = None
    group_id: str | None = None
    parent_id: str | None = None
    #: Present when the backend stores extended results (name, args, kwargs, worker, ...).
    extended: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exception(self) -> EncodedException | None:
        """The encoded exception, for FAILURE, RETRY and REVOKED records."""
        if self.status not in EXCEPTION_STATES or not isinstance(self.result, Mapping):
            return None
        exc_type = self.result.get("exc_type")
        if not isinstance(exc_type, str):
            return None
        message = self.result.get("exc_message", ())
        if not isinstance(message, list | tuple):
            message = (message,)
        module = self.result.get("exc_module")
        return EncodedException(
            exc_type, tuple(message), module if isinstance(module, str) else None
        )

    def to_wire(self) -> dict[str, Any]:
        """The record as a mapping, in the order Celery writes it."""
        result = self.result.to_wire() if isinstance(self.result, EncodedException) else self.result
        wire: dict[str, Any] = {
            "status": self.status,
            "result": result,
            "traceback": self.traceback,
            "children": list(self.children),
            "date_done": None if self.date_done is None else self.date_done.isoformat(),
        }
        if self.group_id:
            wire["group_id"] = self.group_id
        if self.parent_id:
            wire["parent_id"] = self.parent_id
        wire.update(self.extended)
        wire["task_id"] = self.task_id
        return wire


def encode_result(record: ResultRecord, serializer: str = "json") -> bytes:
    """Serialize a result record for storage."""
    if not record.status:
        raise ValidationError("status", "must not be empty")
    data, _, _ = serializers.dumps(record.to_wire(), serializer, path="result")
    return data


def decode_result(
    data: bytes,
    content_type: str = serializers.JSON,
    *,
    limits: Limits = DEFAULT_LIMITS,
    accept: Iterable[str] = serializers.DEFAULT_ACCEPT,
) -> ResultRecord:
    """Read a stored result record (``content_type``: the result serializer's; ``accept``:
    the serializers the reader takes); errors name the field."""
    value = serializers.loads(data, content_type, limits=limits, accept=accept)
    if not isinstance(value, Mapping):
        raise ValidationError("result", "a result record must be a mapping")
    status = value.get("status")
    if not isinstance(status, str) or not status:
        raise ValidationError("status", "must be a non-empty string")
    task_id = value.get("task_id")
    if not isinstance(task_id, str):
        raise ValidationError("task_id", "must be a string")
    traceback = value.get("traceback")
    if traceback is not None and not isinstance(traceback, str):
        # celery-node 0.5.9 writes the return value (or the error object) here (SPEC Appendix B,
        # N6): a traceback is only ever shown, so its JSON text is kept; never one on success.
        traceback = None if status == "SUCCESS" else orjson.dumps(traceback).decode()
    children = value.get("children") or []
    if not isinstance(children, list):
        raise ValidationError("children", "must be a list")
    date_done = parse_time(value.get("date_done"), "date_done")
    for key in ("group_id", "parent_id"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise ValidationError(key, "must be a string or null")
    return ResultRecord(
        task_id=task_id,
        status=status,
        result=value.get("result"),
        traceback=traceback,
        children=tuple(children),
        date_done=date_done,
        group_id=value.get("group_id"),
        parent_id=value.get("parent_id"),
        extended={k: v for k, v in value.items() if k not in _CORE},
    )
