"""Settling a call that ran: its result or exception stored, what follows it sent, then the
hooks and signals; the return value says how to settle the message."""

from __future__ import annotations

import logging
import time
import traceback as tb
from typing import TYPE_CHECKING, Any

from celeriac.protocol import ProtocolError, TaskMessage
from celeriac.protocol.results import EncodedException
from celeriac.protocol.states import FAILURE, RETRY, REVOKED, SUCCESS

from .. import signals
from ..einfo import ExceptionInfo
from ..exceptions import Ignore, Reject, Retry, TaskRevokedError, TimeLimitExceeded, WorkerLostError
from ..task import Context, Task, _request
from .boundary import safe_repr
from .follow_ups import chord_part, run_errbacks, send_following
from .job import Outcome
from .outcome_hooks import (
    IGNORED,
    REJECTED,
    call_hook,
    failed,
    finish,
    on_failure,
    signal_failure,
    signal_revoked,
    started,
)
from .result_store import describe, store_state
from .task_context import CurrentRequest, context_for

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ACK", "settle_failure", "settle_success", "store_failure"]

log = logging.getLogger("celeriac.app.trace")

ACK = Outcome("ack")


def settle_success(
    app: App,
    task: Task[Any, Any],
    msg: TaskMessage,
    result: Any,
    queue: str,
    request: Context | None = None,
) -> Outcome:
    """Store a result, send what follows it, then the hooks and signals in Celery's order:
    ``on_success``, ``task_success``, ``after_return``, ``task_postrun``."""
    with CurrentRequest(request or context_for(msg, queue)):
        return _settle_success(app, task, msg, result, queue)


def _settle_success(
    app: App, task: Task[Any, Any], msg: TaskMessage, result: Any, queue: str
) -> Outcome:
    try:
        send_following(app, msg, result)
        store_state(app, task, msg, SUCCESS, result, queue=queue)
    except ProtocolError as exc:  # a result the serializer refuses: Celery stores an EncodeError
        log.error("task %s[%s] returned a result that cannot be stored: %s", msg.task, msg.id, exc)
        failure = EncodedException("EncodeError", (str(exc),), "kombu.exceptions").to_wire()
        store_state(app, task, msg, FAILURE, failure, f"EncodeError: {exc}", queue)
        _failure_tail(app, task, msg, exc, failure)
        return Outcome("ack", f"failed: EncodeError: {exc}", FAILURE)
    chord_part(app, msg, SUCCESS, result)
    began = started.get(msg.id)
    try:
        call_hook(task, msg, "on_success", result, msg.id, msg.args, msg.kwargs)
    except Exception:  # an eager run's: to the caller, after task_postrun (Celery's order)
        finish(task, msg, SUCCESS, result, after_return=False)
        raise
    if signals.task_success:
        runtime = time.monotonic() - began if began is not None else 0.0
        signals.task_success.send(task, result=result, runtime=runtime)
    if log.isEnabledFor(logging.INFO):
        log.info("task %s[%s] succeeded", msg.task, msg.id)
    finish(task, msg, SUCCESS, result)
    return ACK if result is None else Outcome("ack", "", SUCCESS, "", result)


def _failure_tail(
    app: App,
    task: Task[Any, Any],
    msg: TaskMessage,
    exc: BaseException,
    encoded: Any,
    errback_call: tuple[Context, BaseException, str] | None = None,
    shown: str | None = None,
) -> None:
    """What follows a stored FAILURE of a run: errbacks (and the chord part), ``on_failure``,
    ``task_failure``, the log line (``shown``), ``after_return``, ``task_postrun``."""
    run_errbacks(app, msg, FAILURE, encoded, errback_call)
    failed(task, msg, exc)
    if shown is not None:
        log.error("task %s[%s] failed: %s", msg.task, msg.id, shown)
    finish(task, msg, FAILURE, exc)


def settle_failure(
    app: App,
    task: Task[Any, Any],
    msg: TaskMessage,
    request: Context,
    exc: BaseException,
    queue: str,
) -> Outcome:
    """Turn an exception from a task into a retry, a rejection or a stored failure; then the
    hooks and signals in Celery's order (``on_retry``/``on_failure``, ``task_retry``/
    ``task_failure``, ``after_return``, ``task_postrun``)."""
    with CurrentRequest(request):
        return _settle_failure(app, task, msg, request, exc, queue)


def _settle_failure(
    app: App,
    task: Task[Any, Any],
    msg: TaskMessage,
    request: Context,
    exc: BaseException,
    queue: str,
) -> Outcome:
    if isinstance(exc, Retry):
        cause = exc.exc or exc
        if exc.exc is not None:
            reason = EncodedException.from_exception(exc.exc)
        else:  # a Retry's own arguments hold itself (as Celery's): described by its message
            reason = EncodedException(type(exc).__qualname__, (str(exc),), type(exc).__module__)
        trace = "".join(tb.format_exception(cause))
        store_state(app, task, msg, RETRY, reason.to_wire(), trace)
        einfo = ExceptionInfo(exc)
        call_hook(
            task, msg, "on_retry", exc.exc, msg.id, msg.args, msg.kwargs, einfo, internal=True
        )
        if signals.task_retry:
            signals.task_retry.send(task, request=request, reason=exc, einfo=einfo)
        log.info("task %s[%s] retry: %s", msg.task, msg.id, safe_repr(exc))
        finish(task, msg, RETRY, exc)
        return Outcome("retry", f"retry: {safe_repr(cause)}", RETRY, trace)
    if isinstance(exc, Ignore):
        finish(task, msg, IGNORED, exc)
        return ACK
    if isinstance(exc, Reject):
        if exc.requeue:
            finish(task, msg, REJECTED, exc)
            return Outcome("requeue", f"rejected-by-task: {safe_repr(exc)}")
        # As Celery 5.7 (its issue #4222): a message rejected for good never runs again, so the
        # task ends FAILURE (stored, errbacks, task_failure) before the message is rejected.
        encoded, trace = describe(exc)
        store_state(app, task, msg, FAILURE, encoded, trace, queue)
        run_errbacks(app, msg, FAILURE, encoded, (request, exc, trace))
        signal_failure(task, msg, exc)
        finish(task, msg, REJECTED, exc)
        return Outcome("dead-letter", f"rejected-by-task: {safe_repr(exc)}", FAILURE, trace)
    if isinstance(exc, TaskRevokedError):
        # Raised by terminate as a bare class: say what happened.
        said = exc if exc.args else TaskRevokedError("revoked: terminated while running")
        revoked = EncodedException.from_exception(said).to_wire()
        store_state(app, task, msg, REVOKED, revoked)
        chord_part(app, msg, REVOKED, revoked)
        signal_revoked(task, request, terminated=True)
        finish(task, msg, REVOKED, said)
        return Outcome("ack", "revoked", REVOKED)
    autoretry = tuple(task.option("autoretry_for", ()) or ())
    if autoretry and isinstance(exc, autoretry):
        token = _request.set(request)
        try:
            task.retry(exc=exc, **dict(task.option("retry_kwargs", {}) or {}))
        except Retry as retry:
            return _settle_failure(app, task, msg, request, retry, queue)
        except Exception as final:  # retries used up: the original exception stands
            exc = final
        finally:
            _request.reset(token)
    shown = safe_repr(exc)
    encoded, trace = describe(exc)
    try:
        store_state(app, task, msg, FAILURE, encoded, trace, queue)
    except ProtocolError as store_error:  # an exception whose arguments cannot be serialized
        fallback = EncodedException(type(exc).__qualname__, (shown,), type(exc).__module__)
        encoded = fallback.to_wire()
        store_state(app, task, msg, FAILURE, encoded, f"{shown}; {safe_repr(store_error)}", queue)
    _failure_tail(app, task, msg, exc, encoded, (request, exc, trace), shown)
    return Outcome("ack", f"failed: {shown}", FAILURE, trace)


def store_failure(
    app: App, msg: TaskMessage, exc: BaseException, state: str = FAILURE, queue: str = ""
) -> None:
    """Store a failure the worker itself decided (REVOKED for a task terminated while it ran,
    as Celery stores it) and run the errbacks; then what Celery's
    worker calls for it: for a hard time limit ``on_failure``, ``after_return`` and
    ``task_failure``; for a lost worker ``task_failure``; for a terminated task
    ``task_revoked``."""
    started.pop(msg.id, None)
    encoded, trace = describe(exc)
    task = app.tasks.get(msg.task)
    store_state(app, task, msg, state, encoded, trace)
    request = context_for(msg, queue)
    run_errbacks(app, msg, state, encoded, (request, exc, trace) if task else None)
    if task is None:
        return
    with CurrentRequest(request):
        if isinstance(exc, TaskRevokedError):
            signal_revoked(task, request, terminated=True)
            return
        if not isinstance(exc, TimeLimitExceeded | WorkerLostError):
            return  # refused before it ran (a bad limit): no run to report
        einfo = ExceptionInfo(exc)
        if isinstance(exc, TimeLimitExceeded):
            on_failure(task, msg, exc, einfo)
            call_hook(task, msg, "after_return", FAILURE, exc, msg.id, msg.args, msg.kwargs, None)
        signal_failure(task, msg, exc, einfo)
