"""A call's outcome as the task and its listeners hear of it, in Celery's order: the task's
hooks (``on_success``/``on_failure``/``on_retry``, ``after_return``) and the ``task_*``
signals."""

from __future__ import annotations

import logging
from typing import Any

from celeriac.protocol import TaskMessage
from celeriac.protocol.states import RETRY

from .. import signals
from ..einfo import ExceptionInfo
from ..task import Context, Task, current_request

__all__ = [
    "IGNORED",
    "REJECTED",
    "call_hook",
    "failed",
    "finish",
    "signal_failure",
    "signal_revoked",
    "started",
]

log = logging.getLogger("celeriac.app.trace")

#: Celery's states for a run the task ended with ``Ignore`` or ``Reject``, as ``task_postrun``
#: reports them (the message is settled as the outcome says, whatever the state is called).
IGNORED, REJECTED = "IGNORED", "REJECTED"

#: When each running call started (monotonic), for ``task_success``'s ``runtime``.
started: dict[str, float] = {}


def call_hook(
    task: Task[Any, Any], msg: TaskMessage, name: str, *args: Any, internal: bool = False
) -> None:
    """Call one of the task's outcome hooks. One that raises is logged and the outcome, already
    stored, stands (Celery's behaviour for ``on_success`` and ``after_return``); a raising
    ``on_failure``/``on_retry`` is also a ``task_internal_error``, as in Celery. Under
    ``task.apply()`` a raising ``on_success``/``after_return`` raises to the caller, as in
    Celery (tests see the error)."""
    if getattr(type(task), name, None) is getattr(Task, name):
        return  # not overridden: nothing to call
    hook = getattr(task, name)
    try:
        hook(*args)
    except Exception as exc:
        if not internal and current_request().is_eager:
            raise
        log.exception("Task %s[%s] %s handler raised: %r", msg.task, msg.id, name, exc)
        if internal and signals.task_internal_error:
            signals.task_internal_error.send(
                task,
                task_id=msg.id,
                args=msg.args,
                kwargs=msg.kwargs,
                request=None,
                exception=exc,
                traceback=exc.__traceback__,
                einfo=ExceptionInfo(exc, internal=True),
            )


def finish(
    task: Task[Any, Any], msg: TaskMessage, state: str, retval: Any, after_return: bool = True
) -> None:
    """The end of every run, as Celery's: ``after_return`` (not for a retried, ignored or
    rejected run), then ``task_postrun``."""
    started.pop(msg.id, None)
    try:
        if state not in (RETRY, IGNORED, REJECTED) and after_return:
            call_hook(task, msg, "after_return", state, retval, msg.id, msg.args, msg.kwargs, None)
    finally:  # task_postrun even when an eager run's after_return raises, as in Celery
        if signals.task_postrun:
            signals.task_postrun.send(
                task,
                task_id=msg.id,
                task=task,
                args=msg.args,
                kwargs=msg.kwargs,
                retval=retval,
                state=state,
            )


def on_failure(
    task: Task[Any, Any], msg: TaskMessage, exc: BaseException, einfo: ExceptionInfo
) -> None:
    """The task's ``on_failure`` hook (a raising one is a ``task_internal_error``)."""
    call_hook(task, msg, "on_failure", exc, msg.id, msg.args, msg.kwargs, einfo, internal=True)


def signal_failure(
    task: Task[Any, Any], msg: TaskMessage, exc: BaseException, einfo: ExceptionInfo | None = None
) -> None:
    """``task_failure``, when anyone listens."""
    if signals.task_failure:
        signals.task_failure.send(
            task,
            task_id=msg.id,
            exception=exc,
            args=msg.args,
            kwargs=msg.kwargs,
            traceback=exc.__traceback__,
            einfo=einfo if einfo is not None else ExceptionInfo(exc),
        )


def failed(task: Task[Any, Any], msg: TaskMessage, exc: BaseException) -> None:
    """``on_failure`` then ``task_failure``, after the failure was stored (Celery's order)."""
    einfo = ExceptionInfo(exc)
    on_failure(task, msg, exc, einfo)
    signal_failure(task, msg, exc, einfo)


def signal_revoked(
    task: Task[Any, Any], request: Context, terminated: bool, expired: bool = False
) -> None:
    """``task_revoked``, when anyone listens (``signum`` is not known here: None)."""
    if signals.task_revoked:
        signals.task_revoked.send(
            task, request=request, terminated=terminated, signum=None, expired=expired
        )
