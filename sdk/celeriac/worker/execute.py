"""Running one task call as a worker does: states, results, callbacks, chains, chords, retries.

``execute`` never raises for anything the task does; it returns what to do with the message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import socket
import time
import traceback as tb
import uuid
from collections.abc import Callable, Container, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from celeriac.backends import ChordPart, ResultBackend
from celeriac.protocol import ProtocolError, TaskMessage
from celeriac.protocol.results import EncodedException, ResultRecord
from celeriac.protocol.states import FAILURE, RETRY, REVOKED, STARTED, SUCCESS
from celeriac.transports import BrokerUnavailable

from .. import signals
from ..canvas import Signature, _typed, group
from ..einfo import ExceptionInfo
from ..exceptions import (
    Ignore,
    NotRegistered,
    Reject,
    Retry,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)
from ..task import Context, Task, _request, current_request
from .boundary import safe_repr
from .job import Outcome
from .request import Request

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult

__all__ = ["Outcome", "execute", "request_for", "run_eagerly"]

T = TypeVar("T")
HOSTNAME = f"celeriac@{socket.gethostname()}"
log = logging.getLogger("celeriac.app.trace")  # Celery's: outcomes in the worker's format


ACK = Outcome("ack")


def _context(
    msg: TaskMessage, queue: str, is_eager: bool = False, hostname: str = HOSTNAME
) -> Context:
    h, p = msg.headers, msg.properties
    return Context(
        id=h.id,
        task=h.task,
        args=msg.args,
        kwargs=msg.kwargs,
        retries=h.retries,
        eta=h.eta,
        expires=h.expires,
        group=h.group,
        group_index=h.group_index,
        root_id=h.root_id or h.id,
        parent_id=h.parent_id,
        chord=msg.embed.chord,
        callbacks=msg.embed.callbacks,
        errbacks=msg.embed.errbacks,
        chain=msg.embed.chain,
        # As Celery's: a worker's delivery says whether it is redelivered, apply()'s is eager.
        delivery_info={
            "exchange": "",
            "routing_key": queue,
            "priority": p.priority,
            **({"is_eager": True} if is_eager else {"redelivered": False}),
        },
        hostname=hostname,
        is_eager=is_eager,
        headers=dict(h.extra),
        reply_to=p.reply_to,
        correlation_id=p.correlation_id,
        origin=h.origin,
        ignore_result=bool(h.ignore_result),
        shadow=h.shadow,
        timelimit=(h.time_limit, h.soft_time_limit),
        time_limit=h.time_limit,
        soft_time_limit=h.soft_time_limit,
        argsrepr=h.argsrepr,
        kwargsrepr=h.kwargsrepr,
        replaced_task_nesting=h.replaced_task_nesting or 0,
        stamped_headers=h.stamped_headers,
        stamps=h.stamps,
        properties={
            "correlation_id": p.correlation_id,
            "reply_to": p.reply_to,
            "priority": p.priority,
            "delivery_mode": p.delivery_mode,
            **p.extra,
        },
    )


def request_for(
    msg: TaskMessage, queue: str, hostname: str = HOSTNAME, task: Task[Any, Any] | None = None
) -> Request:
    """The worker's view of a received message (what ``task_received`` receivers get)."""
    return Request(msg, task, queue, hostname)


def _store(
    app: App,
    task: Task[Any, Any] | None,
    msg: TaskMessage,
    state: str,
    result: Any,
    traceback: str | None = None,
    queue: str = "",
) -> None:
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


def _send(
    app: App,
    sig: Mapping[str, Any],
    parent: TaskMessage,
    result: Any = None,
    pass_result: bool = True,
    **extra: Any,
) -> None:
    """Send a follow-up signature (callback, chain step, chord body) as its parent's child.

    One the client side refuses (an option out of range, a queue that is not a name) is logged
    and not sent: it would be refused again, and a requeue would run the parent again."""
    try:
        s: Signature[Any] = _typed(sig)
        if type(s) is not Signature:
            # A group, chord or chain (a step of a chain, a chord's body): sent as Celery's
            # worker sends it, with the result in front of each of its first tasks' arguments.
            partial = (result,) if pass_result and not s.immutable else ()
            following = extra.pop("chain", None) or s["options"].get("chain")
            if following:
                extra["chain"] = following
            s.bind(app).apply_async(
                partial, root_id=parent.headers.root_id or parent.id, parent_id=parent.id, **extra
            )
            return
        args = list(s["args"])
        if pass_result and not s.immutable:
            args = [result, *args]
        options = {k: v for k, v in s["options"].items() if k in _FOLLOW_UP_OPTIONS}
        options.update(extra)
        app.send_task(
            s.name,
            args,
            s["kwargs"],
            root_id=parent.headers.root_id or parent.id,
            parent_id=parent.id,
            **options,
        )
    except (ValueError, TypeError, LookupError) as exc:
        name = sig.get("task") if isinstance(sig, Mapping) else None
        log.error(
            "task %s[%s]: follow-up %s not sent: %s",
            parent.task,
            parent.id,
            safe_repr(name, 100),
            safe_repr(exc),
        )


_FOLLOW_UP_OPTIONS = frozenset(
    (
        "task_id",
        "queue",
        "priority",
        "countdown",
        "eta",
        "expires",
        "link",
        "link_error",
        "headers",
        "serializer",
        "compression",
        "shadow",
        "time_limit",
        "soft_time_limit",
        "chain",  # a chord body's: the steps after the chord
    )
)


def _send_following(app: App, msg: TaskMessage, result: Any) -> None:
    """Send the callbacks and the chain's next step, before the result is stored, as Celery
    does: they are then among the task's ``children`` in its record."""
    callbacks = [_typed(callback) for callback in msg.embed.callbacks or ()]
    if len(callbacks) > 1:
        # Several callbacks go as one group (each group among them on its own), as Celery's
        # worker sends them: that group is then the task's child.
        plain = [c for c in callbacks if not isinstance(c, group)]
        callbacks = [c for c in callbacks if isinstance(c, group)]
        if plain:
            callbacks.append(group(plain))
    for callback in callbacks:
        _send(app, callback, msg, result)
    if msg.embed.chain:
        *rest, following = msg.embed.chain  # the last element runs next (SPEC.md §2.6)
        _send(app, following, msg, result, chain=rest or None)


def _chord_part(app: App, msg: TaskMessage, state: str, result: Any) -> None:
    """Count a chord header task's final outcome; the one that completes the chord sends the
    body, or fails it when a header task failed (SPEC.md §7.5)."""
    body = msg.embed.chord
    if body is None or msg.headers.group is None or not app.conf.result_backend:
        return
    part = ChordPart(
        msg.headers.group,
        msg.id,
        msg.headers.group_index,
        state,
        result,
        int(body.get("chord_size") or 0),
    )
    join = backend_call(app, lambda backend: backend.chord_part_return(part))
    if join is None:
        return
    try:
        if join.failed is None:
            _send(app, body, msg, join.results)
            return
        failed_id, exc = join.failed
        described = ResultRecord(failed_id, FAILURE, exc).exception
        what = f"{described.exc_type}{tuple(described.exc_message)!r}" if described else repr(exc)
        error = EncodedException(
            "ChordError", (f"Dependency {failed_id} raised {what}",), "celery.exceptions"
        )
        body_options = Signature(body)["options"]
        body_id = body_options.get("task_id")
        if body_id:
            failure = ResultRecord(body_id, FAILURE, error.to_wire(), date_done=datetime.now(UTC))
            app.backend.store_for(failure, body_options.get("reply_to"), body_id)
        for errback in body_options.get("link_error") or ():
            _send(app, errback, msg, body_id)
    finally:
        join.release()


def _on_failure(
    app: App,
    msg: TaskMessage,
    state: str = FAILURE,
    exc: Any = None,
    failed: tuple[Context, BaseException, str] | None = None,
) -> None:
    """Count a failed chord part and run the errbacks. With ``failed`` (the request, the
    exception and its traceback text), an errback whose task is registered here and takes
    more than one argument is a new-style one, called here as Celery calls it:
    ``errback(request, exc, traceback)``; the others are sent with the failed task's id."""
    _chord_part(app, msg, state, exc)
    for errback in msg.embed.errbacks or ():
        if failed is not None and _takes_request(app, errback):
            try:
                Signature(errback, app=app)(*failed)
            except Exception:
                log.exception("Errback %r raised an exception", Signature(errback).name)
            continue
        # Celery's message-borne errbacks get the failed task's id as their first argument.
        _send(app, errback, msg, msg.id)


def _takes_request(app: App, errback: Mapping[str, Any]) -> bool:
    """Celery's test for a new-style errback: a registered, unbound task whose function
    still takes more than one positional argument once the signature's own are given."""
    sig: Signature[Any] = Signature(errback)
    task = app.tasks.get(sig.name)
    if task is None or task.bind:
        return False
    try:
        params = list(inspect.signature(task.fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not sig.immutable:
        bound = set(list(p.name for p in positional)[: len(sig["args"])]) | set(sig["kwargs"])
        positional = [p for p in positional if p.name not in bound]
    return len(positional) > 1


#: Celery's states for a run the task ended with ``Ignore`` or ``Reject``, as ``task_postrun``
#: reports them (the message is settled as the outcome says, whatever the state is called).
IGNORED, REJECTED = "IGNORED", "REJECTED"

#: When each running call started (monotonic), for ``task_success``'s ``runtime``.
_started: dict[str, float] = {}


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
        _store(app, None, msg, FAILURE, unknown.to_wire())
        return Outcome("dead-letter", f"unknown-task: {msg.task!r} is not registered", FAILURE)
    expires = msg.headers.expires
    if msg.id in revoked or (expires is not None and _aware(expires) <= datetime.now(UTC)):
        why = "revoked" if msg.id in revoked else "expired"
        revoked_exc = EncodedException("TaskRevokedError", (why,), "celeriac.exceptions")
        _store(app, task, msg, REVOKED, revoked_exc.to_wire())
        _chord_part(app, msg, REVOKED, revoked_exc.to_wire())
        if signals.task_revoked:
            signals.task_revoked.send(
                task,
                request=_context(msg, queue, hostname=hostname),
                terminated=False,
                signum=None,
                expired=why == "expired",
            )
        # Celery's task-revoked says terminated=False for a task that never started.
        return Outcome("ack", "expired" if why == "expired" else "revoked-before-start", REVOKED)
    request = _context(msg, queue, is_eager, hostname)
    _started[msg.id] = time.monotonic()
    if signals.task_prerun:
        with _Current(request):
            signals.task_prerun.send(
                task, task_id=msg.id, task=task, args=msg.args, kwargs=msg.kwargs
            )
    # As Celery: a STARTED state is not stored for a call whose result is ignored.
    if task.option("track_started") and not _ignored(task, msg):
        _store(app, task, msg, STARTED, {"pid": os.getpid(), "hostname": hostname})
    return task, request


class _Current:
    """``task.request`` is the call's while its signals and hooks run, as in Celery. A class
    rather than a generator context manager: it wraps every call a worker runs."""

    __slots__ = ("request", "token")

    def __init__(self, request: Context) -> None:
        self.request = request

    def __enter__(self) -> None:
        self.token = _request.set(self.request)

    def __exit__(self, *exc: object) -> None:
        _request.reset(self.token)


def _ignored(task: Task[Any, Any], msg: TaskMessage) -> bool:
    return bool(msg.headers.ignore_result or task.option("ignore_result"))


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


def _hook(
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


def _finish(
    task: Task[Any, Any], msg: TaskMessage, state: str, retval: Any, after_return: bool = True
) -> None:
    """The end of every run, as Celery's: ``after_return`` (not for a retried, ignored or
    rejected run), then ``task_postrun``."""
    _started.pop(msg.id, None)
    try:
        if state not in (RETRY, IGNORED, REJECTED) and after_return:
            _hook(task, msg, "after_return", state, retval, msg.id, msg.args, msg.kwargs, None)
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
    with _Current(request or _context(msg, queue)):
        return _settle_success(app, task, msg, result, queue)


def _settle_success(
    app: App, task: Task[Any, Any], msg: TaskMessage, result: Any, queue: str
) -> Outcome:
    try:
        _send_following(app, msg, result)
        _store(app, task, msg, SUCCESS, result, queue=queue)
    except ProtocolError as exc:  # a result the serializer refuses: Celery stores an EncodeError
        log.error("task %s[%s] returned a result that cannot be stored: %s", msg.task, msg.id, exc)
        error = exc
        failure = EncodedException("EncodeError", (str(exc),), "kombu.exceptions").to_wire()
        _store(app, task, msg, FAILURE, failure, f"EncodeError: {exc}", queue)
        _on_failure(app, msg, FAILURE, failure)
        _failed(task, msg, error)
        _finish(task, msg, FAILURE, error)
        return Outcome("ack", f"failed: EncodeError: {exc}", FAILURE)
    _chord_part(app, msg, SUCCESS, result)
    started = _started.get(msg.id)
    try:
        _hook(task, msg, "on_success", result, msg.id, msg.args, msg.kwargs)
    except Exception:  # an eager run's: to the caller, after task_postrun (Celery's order)
        _finish(task, msg, SUCCESS, result, after_return=False)
        raise
    if signals.task_success:
        runtime = time.monotonic() - started if started is not None else 0.0
        signals.task_success.send(task, result=result, runtime=runtime)
    if log.isEnabledFor(logging.INFO):
        log.info("task %s[%s] succeeded", msg.task, msg.id)
    _finish(task, msg, SUCCESS, result)
    return ACK if result is None else Outcome("ack", value=result)


def _failed(task: Task[Any, Any], msg: TaskMessage, exc: BaseException) -> None:
    """``on_failure`` then ``task_failure``, after the failure was stored (Celery's order)."""
    einfo = ExceptionInfo(exc)
    _hook(task, msg, "on_failure", exc, msg.id, msg.args, msg.kwargs, einfo, internal=True)
    if signals.task_failure:
        signals.task_failure.send(
            task,
            task_id=msg.id,
            exception=exc,
            args=msg.args,
            kwargs=msg.kwargs,
            traceback=exc.__traceback__,
            einfo=einfo,
        )


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
    with _Current(request):
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
        _store(app, task, msg, RETRY, reason.to_wire(), trace)
        einfo = ExceptionInfo(exc)
        _hook(task, msg, "on_retry", exc.exc, msg.id, msg.args, msg.kwargs, einfo, internal=True)
        if signals.task_retry:
            signals.task_retry.send(task, request=request, reason=exc, einfo=einfo)
        log.info("task %s[%s] retry: %s", msg.task, msg.id, safe_repr(exc))
        _finish(task, msg, RETRY, exc)
        return Outcome("retry", f"retry: {safe_repr(cause)}", RETRY, trace)
    if isinstance(exc, Ignore):
        _finish(task, msg, IGNORED, exc)
        return ACK
    if isinstance(exc, Reject):
        if exc.requeue:
            _finish(task, msg, REJECTED, exc)
            return Outcome("requeue", f"rejected-by-task: {safe_repr(exc)}")
        # As Celery 5.7 (its issue #4222): a message rejected for good never runs again, so the
        # task ends FAILURE (stored, errbacks, task_failure) before the message is rejected.
        encoded, trace = _describe(exc)
        _store(app, task, msg, FAILURE, encoded, trace, queue)
        _on_failure(app, msg, FAILURE, encoded, (request, exc, trace))
        if signals.task_failure:
            signals.task_failure.send(
                task,
                task_id=msg.id,
                exception=exc,
                args=msg.args,
                kwargs=msg.kwargs,
                traceback=exc.__traceback__,
                einfo=ExceptionInfo(exc),
            )
        _finish(task, msg, REJECTED, exc)
        return Outcome("dead-letter", f"rejected-by-task: {safe_repr(exc)}", FAILURE, trace)
    if isinstance(exc, TaskRevokedError):
        # Raised by terminate as a bare class: say what happened.
        said = exc if exc.args else TaskRevokedError("revoked: terminated while running")
        revoked = EncodedException.from_exception(said).to_wire()
        _store(app, task, msg, REVOKED, revoked)
        _chord_part(app, msg, REVOKED, revoked)
        if signals.task_revoked:
            signals.task_revoked.send(
                task, request=request, terminated=True, signum=None, expired=False
            )
        _finish(task, msg, REVOKED, said)
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
    encoded, trace = _describe(exc)
    try:
        _store(app, task, msg, FAILURE, encoded, trace, queue)
    except ProtocolError as store_error:  # an exception whose arguments cannot be serialized
        fallback = EncodedException(type(exc).__qualname__, (shown,), type(exc).__module__)
        encoded = fallback.to_wire()
        _store(app, task, msg, FAILURE, encoded, f"{shown}; {safe_repr(store_error)}", queue)
    _on_failure(app, msg, FAILURE, encoded, (request, exc, trace))
    _failed(task, msg, exc)
    log.error("task %s[%s] failed: %s", msg.task, msg.id, shown)
    _finish(task, msg, FAILURE, exc)
    return Outcome("ack", f"failed: {shown}", FAILURE, trace)


def _describe(exc: BaseException) -> tuple[dict[str, Any], str]:
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


def store_failure(
    app: App, msg: TaskMessage, exc: BaseException, state: str = FAILURE, queue: str = ""
) -> None:
    """Store a failure the worker itself decided (REVOKED for a task terminated while it ran,
    as Celery stores it) and run the errbacks; then what Celery's
    worker calls for it: for a hard time limit ``on_failure``, ``after_return`` and
    ``task_failure``; for a lost worker ``task_failure``; for a terminated task
    ``task_revoked``."""
    _started.pop(msg.id, None)
    encoded, trace = _describe(exc)
    task = app.tasks.get(msg.task)
    _store(app, task, msg, state, encoded, trace)
    request = _context(msg, queue)
    _on_failure(app, msg, state, encoded, (request, exc, trace) if task else None)
    if task is None:
        return
    with _Current(request):
        if isinstance(exc, TaskRevokedError):
            if signals.task_revoked:
                signals.task_revoked.send(
                    task, request=request, terminated=True, signum=None, expired=False
                )
            return
        if not isinstance(exc, TimeLimitExceeded | WorkerLostError):
            return  # refused before it ran (a bad limit): no run to report
        einfo = ExceptionInfo(exc)
        if isinstance(exc, TimeLimitExceeded):
            args = (exc, msg.id, msg.args, msg.kwargs, einfo)
            _hook(task, msg, "on_failure", *args, internal=True)
            _hook(task, msg, "after_return", FAILURE, exc, msg.id, msg.args, msg.kwargs, None)
        if signals.task_failure:
            signals.task_failure.send(
                task,
                task_id=msg.id,
                exception=exc,
                args=msg.args,
                kwargs=msg.kwargs,
                traceback=exc.__traceback__,
                einfo=einfo,
            )


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
