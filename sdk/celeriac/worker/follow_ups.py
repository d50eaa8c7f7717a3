"""What a finished call sends on: its callbacks and the chain's next step, a chord's body
(or its failure) once the last header task ends, and the errbacks of a failed call."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celeriac.backends import ChordPart
from celeriac.protocol import TaskMessage
from celeriac.protocol.results import EncodedException, ResultRecord
from celeriac.protocol.states import FAILURE

from ..canvas import Signature, _typed, group
from ..task import Context
from .boundary import safe_repr
from .result_store import backend_call

if TYPE_CHECKING:
    from ..app import App

__all__ = ["chord_part", "run_errbacks", "send_following"]

log = logging.getLogger("celeriac.app.trace")

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


def send_following(app: App, msg: TaskMessage, result: Any) -> None:
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


def chord_part(app: App, msg: TaskMessage, state: str, result: Any) -> None:
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


def run_errbacks(
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
    chord_part(app, msg, state, exc)
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
