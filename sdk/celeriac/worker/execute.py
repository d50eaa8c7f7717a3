"""Running one task call as a worker does: ``prepare`` (unknown, revoked, expired), the call,
then ``settle.py`` (states, results, hooks and signals, follow-ups, retries).

``execute`` never raises for anything the task does; it returns what to do with the message.
The pieces live in ``task_context.py``, ``result_store.py``, ``outcome_hooks.py``,
``follow_ups.py`` and ``settle.py``; the names the pools use are importable from here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Container, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celeriac.protocol import TaskMessage
from celeriac.protocol.results import EncodedException
from celeriac.protocol.states import FAILURE, REVOKED, STARTED

from .. import signals
from ..exceptions import NotRegistered
from ..task import Context, Task
from .follow_ups import chord_part
from .job import Outcome
from .outcome_hooks import signal_revoked, started
from .result_store import backend_call, ignores_result, store_state
from .settle import settle_failure, settle_success, store_failure
from .task_context import HOSTNAME, CurrentRequest, context_for, request_for

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult

__all__ = [
    "HOSTNAME",
    "Outcome",
    "backend_call",
    "execute",
    "log",
    "prepare",
    "request_for",
    "run_eagerly",
    "settle_failure",
    "settle_success",
    "store_failure",
]

log = logging.getLogger("celeriac.app.trace")  # Celery's: outcomes in the worker's format


def prepare(
    app: App,
    msg: TaskMessage,
    queue: str,
    revoked: Container[str],
    hostname: str = HOSTNAME,
    is_eager: bool = False,
) -> tuple[Task[Any, Any], Context] | Outcome:
    """Everything before the call: unknown, revoked and expired tasks end here; for the rest,
    ``task_prerun`` is sent and a tracked start stored."""
    task = app.tasks.get(msg.task)
    if task is None:
        unknown = EncodedException("NotRegistered", (msg.task,), "celeriac.exceptions")
        if signals.task_unknown:
            signals.task_unknown.send(
                None, message=msg, exc=NotRegistered(msg.task), name=msg.task, id=msg.id
            )
        store_state(app, None, msg, FAILURE, unknown.to_wire())
        return Outcome("dead-letter", f"unknown-task: {msg.task!r} is not registered", FAILURE)
    expires = msg.headers.expires
    if msg.id in revoked or (expires is not None and _aware(expires) <= datetime.now(UTC)):
        why = "revoked" if msg.id in revoked else "expired"
        revoked_exc = EncodedException("TaskRevokedError", (why,), "celeriac.exceptions")
        store_state(app, task, msg, REVOKED, revoked_exc.to_wire())
        chord_part(app, msg, REVOKED, revoked_exc.to_wire())
        if signals.task_revoked:  # its request is built only for a listener
            request = context_for(msg, queue, hostname=hostname)
            signal_revoked(task, request, terminated=False, expired=why == "expired")
        # Celery's task-revoked says terminated=False for a task that never started.
        return Outcome("ack", "expired" if why == "expired" else "revoked-before-start", REVOKED)
    request = context_for(msg, queue, is_eager, hostname)
    started[msg.id] = time.monotonic()
    if signals.task_prerun:
        with CurrentRequest(request):
            signals.task_prerun.send(
                task, task_id=msg.id, task=task, args=msg.args, kwargs=msg.kwargs
            )
    # As Celery: a STARTED state is not stored for a call whose result is ignored.
    if task.option("track_started") and not ignores_result(task, msg):
        store_state(app, task, msg, STARTED, {"pid": os.getpid(), "hostname": hostname})
    return task, request


def execute(
    app: App,
    msg: TaskMessage,
    queue: str,
    revoked: Container[str],
    hostname: str = HOSTNAME,
    is_eager: bool = False,
) -> Outcome:
    """Run ``msg``'s task; store its state; send what follows; say how to settle the message
    (``is_eager``: run by ``task.apply()``, as ``self.request.is_eager`` then says)."""
    prepared = prepare(app, msg, queue, revoked, hostname, is_eager)
    if isinstance(prepared, Outcome):
        return prepared
    task, request = prepared
    try:
        result = task.run_with(request, msg.args, msg.kwargs)
        if task.is_async:  # outside the asyncio pool an async task gets a loop of its own
            result = asyncio.run(result)
    except (Exception, SystemExit) as exc:  # a task's exit() is its failure, not the worker's
        return settle_failure(app, task, msg, request, exc, queue)
    return settle_success(app, task, msg, result, queue, request)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run_eagerly(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], options: Mapping[str, Any]
) -> AsyncResult[Any]:
    """``task.apply()``: run here, store the result as a worker would, return its handle."""
    from celeriac.protocol import decode_task, encode_task, new_task_message

    msg = new_task_message(
        task.name,
        args,
        kwargs,
        task_id=options.get("task_id") or str(uuid.uuid4()),
        headers=options.get("headers"),
    )
    msg = decode_task(encode_task(msg))  # the arguments go through the serializer, as sent ones do
    execute(task.app, msg, "eager", set(), is_eager=True)
    return task.app.AsyncResult(msg.id)
