"""Storing a call's states in the result backend, retried while the backend is unreachable,
and the stored form of a task's exception."""

from __future__ import annotations

import logging
import random
import time
import traceback as tb
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from celeriac.backends import ResultBackend
from celeriac.protocol import TaskMessage
from celeriac.protocol.results import EncodedException, ResultRecord
from celeriac.protocol.states import FAILURE, REVOKED, SUCCESS
from celeriac.transports import BrokerUnavailable

from ..task import Task, current_request
from .boundary import safe_repr
from .task_context import HOSTNAME

if TYPE_CHECKING:
    from ..app import App

__all__ = ["backend_call", "describe", "ignores_result", "store_state"]

T = TypeVar("T")
log = logging.getLogger("celeriac.app.trace")  # Celery's: outcomes in the worker's format


def ignores_result(task: Task[Any, Any], msg: TaskMessage) -> bool:
    """Whether this call's result is not stored (the message's or the task's ``ignore_result``)."""
    return bool(msg.headers.ignore_result or task.option("ignore_result"))


def store_state(
    app: App,
    task: Task[Any, Any] | None,
    msg: TaskMessage,
    state: str,
    result: Any,
    traceback: str | None = None,
    queue: str = "",
) -> None:
    """Store ``msg``'s call in ``state`` (a success only when its result is not ignored)."""
    ignore = msg.headers.ignore_result or (task is not None and task.option("ignore_result"))
    if (ignore and state == SUCCESS) or not app.conf.result_backend:
        return
    extended: dict[str, Any] = {}
    if app.conf.result_extended:
        extended = {
            "name": msg.task,
            "args": list(msg.args),
            "kwargs": dict(msg.kwargs),
            "worker": HOSTNAME,
            "retries": msg.headers.retries,
            "queue": queue,
        }
    done = datetime.now(UTC) if state in (SUCCESS, FAILURE, REVOKED) else None
    if hasattr(result, "as_tuple") and app.conf.result_serializer != "pickle":
        # A task returning a result (a group's, a chord's) stores its result tuple, as
        # Celery's backends do (``prepare_value``); a client reads it as that list.
        result = result.as_tuple()
    request = current_request()
    children = [c.as_tuple() for c in request.children] if request.id == msg.id else []
    record = ResultRecord(
        msg.id,
        state,
        result,
        traceback,
        children=children,
        date_done=done,
        group_id=msg.headers.group,
        parent_id=msg.headers.parent_id,
        extended=extended,
    )
    reply_to, correlation_id = msg.properties.reply_to, msg.properties.correlation_id
    backend_call(app, lambda backend: backend.store_for(record, reply_to, correlation_id))


def backend_call(app: App, call: Callable[[ResultBackend], T]) -> T:
    """Call the result backend, retrying while it is unreachable (Celery's
    ``result_backend_always_retry``), so an outage delays a result instead of re-running the
    task that produced it. Opening the backend is retried too."""
    conf = app.conf
    pause = conf.result_backend_base_sleep_between_retries_ms / 1000
    attempts = conf.result_backend_max_retries if conf.result_backend_always_retry else 0
    for attempt in range(attempts + 1):
        try:
            backend = app.backend
        except BrokerUnavailable as exc:
            error: BaseException = exc
        else:
            try:
                return call(backend)
            except backend.transient_errors as exc:
                error = exc
        if attempt == attempts:
            raise error
        log.warning(
            "result backend unreachable (%r); retry %d in %.2f s", error, attempt + 1, pause
        )
        time.sleep(pause * random.uniform(0.5, 1.0))  # jittered backoff: workers spread out
        pause = min(pause * 2, conf.result_backend_max_sleep_between_retries_ms / 1000)
    raise AssertionError("unreachable")


def describe(exc: BaseException) -> tuple[dict[str, Any], str]:
    """The stored form of an exception and its traceback, even when its ``str`` or ``repr``
    raises (a task's exception is user code: it may)."""
    try:
        encoded = EncodedException.from_exception(exc).to_wire()
    except Exception:  # args that cannot even be read
        bare = EncodedException(type(exc).__qualname__, (safe_repr(exc),), type(exc).__module__)
        encoded = bare.to_wire()
    try:
        trace = "".join(tb.format_exception(exc))
    except Exception:
        trace = f"{type(exc).__qualname__}: {safe_repr(exc)} (its traceback could not be formatted)"
    return encoded, trace
