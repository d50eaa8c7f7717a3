"""Celery's built-in tasks (``celery.map``, ``celery.chord_unlock``, ...), registered on every
app under Celery's names, so a message a Celery client sends for one runs here, as Celery's
worker runs it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import App

__all__ = ["register_builtins"]

log = logging.getLogger("celeriac.builtins")


def register_builtins(app: App) -> None:
    """Register Celery's built-in tasks on ``app``."""
    from .canvas import Signature, chord, chunks, maybe_signature
    from .result import GroupResult, result_from_tuple

    def _task(sig: Mapping[str, Any] | str) -> Any:
        name = sig["task"] if isinstance(sig, Mapping) else str(sig)
        registered = app.tasks.get(name)
        if registered is None:
            raise KeyError(f"task {name!r} is not registered with this worker")
        return registered

    @app.task(name="celery.map")
    def xmap(task: Mapping[str, Any], it: Sequence[Any]) -> list[Any]:
        """The task called here on each item (Celery's: a function call, not a message)."""
        fn = _task(task)
        return [fn(item) for item in it]

    @app.task(name="celery.starmap")
    def xstarmap(task: Mapping[str, Any], it: Sequence[Sequence[Any]]) -> list[Any]:
        """The task called here with each item's elements as arguments."""
        fn = _task(task)
        return [fn(*item) for item in it]

    @app.task(name="celery.chunks")
    def chunks_task(task: Mapping[str, Any], it: Sequence[Sequence[Any]], n: int) -> Any:
        """Sends the parts as a group, as Celery's; returns the group's result (stored as its
        result tuple)."""
        return chunks(task, it, n, app=app).apply_async()

    @app.task(name="celery.accumulate", bind=True)
    def accumulate(self: Any, *args: Any, **kwargs: Any) -> Any:
        """Its arguments, or the one at ``index`` (used by ``Task.replace`` with a group)."""
        index = kwargs.get("index")
        return args[index] if index is not None else args

    @app.task(name="celery.backend_cleanup")
    def backend_cleanup() -> None:
        """Drop expired results where the backend does not expire them itself."""
        app.backend.cleanup()

    @app.task(name="celery.chain")
    def chain_task(*args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("chain is not a real task")

    @app.task(name="celery.group", bind=True)
    def group_task(
        self: Any,
        tasks: Sequence[Mapping[str, Any]],
        result: Any,
        group_id: str,
        partial_args: Sequence[Any],
        add_to_parent: bool = True,
    ) -> Any:
        """Sends each task with the group's id (Celery's old way to send a group)."""
        restored = result_from_tuple(result, app)
        for sig in tasks:
            Signature(sig, app=app).clone(partial_args).apply_async(
                group_id=group_id, add_to_parent=False
            )
        if add_to_parent:
            app._add_to_parent(restored)
        return restored

    @app.task(name="celery.chord", bind=True, ignore_result=False)
    def chord_task(
        self: Any,
        /,
        header: Any,
        body: Mapping[str, Any],
        partial_args: Sequence[Any] = (),
        interval: float | None = None,
        countdown: float = 1,
        max_retries: int | None = None,
        eager: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Sends the chord (Celery's old way to send one); returns the body's result."""
        members = header["kwargs"]["tasks"] if isinstance(header, Mapping) else header
        body_sig = maybe_signature(body, app)
        assert body_sig is not None
        return chord(members, body_sig, app=app).apply_async(list(partial_args))

    @app.task(
        name="celery.chord_unlock",
        bind=True,
        max_retries=None,
        ignore_result=True,
        default_retry_delay=app.conf.get("result_chord_retry_interval", 1.0),
    )
    def unlock_chord(
        self: Any,
        /,
        group_id: str,
        callback: Mapping[str, Any],
        interval: float | None = None,
        max_retries: int | None = None,
        result: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Polls a chord's header (for backends that cannot count its parts) and sends the
        body with the results once all are ready, or fails it when one failed (Celery's)."""
        deps = GroupResult(group_id, [result_from_tuple(r, app) for r in result or ()], app)
        if not deps.ready():
            raise self.retry(
                countdown=self.default_retry_delay if interval is None else interval,
                max_retries=max_retries,
            )
        body: Signature[Any] = Signature(callback, app=app)
        try:
            from .result import allow_join_result

            with allow_join_result():
                values = deps.get(timeout=app.conf.get("result_chord_join_timeout", 3.0))
        except Exception as exc:
            failed = next((r for r in deps.results if r.failed()), None)
            reason = f"Dependency {failed.id} raised {exc!r}" if failed else repr(exc)
            log.error("Chord %r raised: %r", group_id, exc)
            _fail_body(app, body, reason)
            return
        body.apply_async((values,))


def _fail_body(app: App, body: Any, reason: str) -> None:
    """Store a ChordError as the body's result and send its errbacks (Celery's
    ``chord_error_from_stack``)."""
    from datetime import UTC, datetime

    from celeriac.protocol.results import EncodedException, ResultRecord
    from celeriac.protocol.states import FAILURE

    error = EncodedException("ChordError", (reason,), "celery.exceptions").to_wire()
    body_id = body["options"].get("task_id")
    if body_id:
        app.backend.store(ResultRecord(body_id, FAILURE, error, date_done=datetime.now(UTC)))
    for errback in body["options"].get("link_error") or ():
        app.signature(errback["task"], errback.get("args", ()), errback.get("kwargs")).apply_async(
            (body_id,)
        )
