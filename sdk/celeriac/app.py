"""The application: settings, registered tasks, and sending calls to the broker."""

from __future__ import annotations

import atexit
import fnmatch
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from celeriac.backends import ResultBackend, open_backend
from celeriac.protocol import ValidationError, encode_task, new_task_message
from celeriac.protocol.signing import sign
from celeriac.protocol.wire import mark_broker_delayed
from celeriac.transports import QueueSpec, Transport, open_transport
from celeriac.transports.registry import redact_url

from .builtins import register_builtins
from .config import Settings, environment, settings_from
from .control import Control
from .result import AsyncResult
from .task import Task, current_request

if TYPE_CHECKING:
    from .canvas import Signature

__all__ = ["App", "current_app"]

P = ParamSpec("P")
R = TypeVar("R")

_SEND_OPTIONS = frozenset(
    (
        "countdown eta expires queue routing_key priority headers link link_error task_id shadow "
        "serializer compression retries time_limit soft_time_limit ignore_result group_id "
        "group_index chord chain root_id parent_id reply_to exchange max_retries "
        "default_retry_delay retry_backoff retry_backoff_max retry_jitter rate_limit acks_late "
        "reject_on_worker_lost track_started dont_autoretry_for retry_kwargs global_rate_limit"
    ).split()
)
# Task options that shape how a worker runs the task, not the message itself.
_WORKER_ONLY = frozenset(
    (
        "exchange max_retries default_retry_delay retry_backoff retry_backoff_max retry_jitter "
        "rate_limit acks_late reject_on_worker_lost track_started dont_autoretry_for retry_kwargs "
        "global_rate_limit"
    ).split()
)
_current: App | None = None


def current_app() -> App:
    """The most recently created app (signatures without an app use it)."""
    if _current is None:
        raise RuntimeError("no celeriac.App has been created yet")
    return _current


class App:
    """A Celeriac application: ``App("proj", broker="redis://...", backend="redis://...")``.

    Settings come from ``config`` (a mapping, or an object such as a module), then keyword
    arguments, then ``CELERIAC_*`` environment variables. With no broker or backend given,
    both are SQLite files in the working directory, so nothing needs a server.
    """

    def __init__(
        self,
        main: str | None = None,
        *,
        broker: str | Sequence[str] | None = None,
        backend: str | None = None,
        config: Mapping[str, Any] | object | None = None,
        **settings: Any,
    ) -> None:
        global _current
        self.main = main
        conf = settings_from(config)
        if broker is not None:
            settings["broker_url"] = broker
        if backend is not None:
            settings["result_backend"] = backend
        self.conf: Settings = settings_from(settings, base=conf, environ=environment())
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._local = threading.local()
        self._backend: ResultBackend | None = None
        self._lock = threading.Lock()
        self.control = Control(self)
        register_builtins(self)
        _current = self

    def __repr__(self) -> str:
        return f"<App {self.main or '__main__'} broker={redact_url(self.conf.broker_url)}>"

    # -- tasks ---------------------------------------------------------------------------------
    @overload
    def task(self, fn: Callable[P, R]) -> Task[P, R]: ...
    @overload
    def task(
        self, *, name: str | None = None, bind: bool = False, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self,
        fn: Callable[P, R] | None = None,
        *,
        name: str | None = None,
        bind: bool = False,
        **options: Any,
    ) -> Any:
        """Register a function (sync or ``async def``) as a task; use bare or with options."""

        def register(f: Callable[P, R]) -> Task[P, R]:
            task_name = name or f"{self.main or f.__module__}.{f.__name__}"
            task: Task[P, R] = Task(self, f, task_name, bind=bind, **options)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    # -- connections ---------------------------------------------------------------------------
    @property
    def backend(self) -> ResultBackend:
        """The result backend (opened on first use)."""
        with self._lock:
            if self._backend is None:
                if not self.conf.result_backend:
                    raise RuntimeError("no result_backend is configured, so results are not kept")
                options: dict[str, Any] = dict(self.conf.result_backend_transport_options)
                options["expires"] = self.conf.result_expires
                if self.conf.result_backend.startswith("rpc:"):
                    options["broker_url"] = self.conf.broker_url  # results go over the broker
                self._backend = open_backend(self.conf.result_backend, **options)
            return self._backend

    def _reply_to(self) -> str | None:
        """Where results come back to when they travel as messages (rpc://)."""
        backend = self.conf.result_backend
        return self.backend.reply_queue() if backend and backend.startswith("rpc:") else None

    def producer(self) -> Transport:
        """This thread's connection to the broker, for publishing."""
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is None:
            options = self.conf.broker_options()
            transport = open_transport(self.conf.broker_url, **options)
            self._local.transport = transport
            self._local.declared = set()
            if options.get("publish_window"):
                _flush_at_exit(transport)
        return transport

    def flush(self) -> None:
        """Return once the broker acknowledged every task this thread sent (with the transport
        option ``publish_window``, ``delay`` returns before that; see ``Transport.flush``)."""
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is not None:
            transport.flush()

    def declare(self, queue: str) -> None:
        """Declare ``queue`` once per connection."""
        transport = self.producer()
        declared: set[str] = self._local.declared
        if queue not in declared:
            transport.declare_queue(QueueSpec(queue))
            declared.add(queue)

    def reset_after_fork(self) -> None:
        """Forget connections inherited from a parent process (a child makes its own)."""
        self._local = threading.local()
        self._backend = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close this thread's broker connection and the result backend."""
        transport = getattr(self._local, "transport", None)
        if transport is not None:
            transport.close()
            self._local.transport = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # -- sending -------------------------------------------------------------------------------
    def route(self, name: str, queue: str | None = None) -> str:
        """The queue a call of task ``name`` goes to: explicit, else task_routes, else default."""
        if queue:
            return queue
        for pattern, target in self.conf.task_routes.items():
            if fnmatch.fnmatchcase(name, pattern):
                return target if isinstance(target, str) else str(target["queue"])
        return self.conf.task_default_queue

    def signature(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A signature of task ``name`` bound to this app (Celery's ``app.signature``)."""
        from .canvas import Signature

        return Signature(name, args, kwargs, options, app=self)

    def add_periodic_task(
        self,
        schedule: Any,
        sig: Mapping[str, Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> str:
        """Add ``sig`` to ``beat_schedule`` under ``name`` (Celery's ``add_periodic_task``).

        ``schedule`` is seconds, a timedelta, a datetime (once) or a ``celeriac.schedules``
        object; ``args``/``kwargs`` extend the signature's, ``options`` are send options.
        Returns the entry's name. Example: ``app.add_periodic_task(10.0, add.s(2, 3))``.
        """
        from .canvas import Signature
        from .schedules import maybe_schedule

        s = sig if isinstance(sig, Signature) else Signature(sig, app=self)
        call_args, call_kwargs = [*s["args"], *args], {**s["kwargs"], **(kwargs or {})}
        shown = [repr(a) for a in call_args] + [f"{k}={v!r}" for k, v in call_kwargs.items()]
        key = name or f"{s.name}({', '.join(shown)})"  # as Celery's repr(sig)
        maybe_schedule(schedule, key)  # a bad schedule fails here, not in the beat
        entry = {
            "task": s.name,
            "schedule": schedule,
            "args": call_args,
            "kwargs": call_kwargs,
            "options": {**s["options"], **options},
        }
        self.conf = self.conf.replace(beat_schedule={**self.conf.beat_schedule, key: entry})
        return key

    def send_task(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """Send a call of task ``name`` (registered here or not) and return its AsyncResult."""
        unknown = set(options) - _SEND_OPTIONS
        if unknown:
            raise TypeError(f"unknown option(s) for {name}: {sorted(unknown)}")
        if self.conf.task_always_eager and name in self.tasks:
            return self.tasks[name].apply(args, kwargs, **options)
        eta = _when(options.get("eta"), options.get("countdown"))
        parent = current_request()
        message = new_task_message(
            name,
            tuple(args),
            dict(kwargs or {}),
            task_id=options.get("task_id"),
            eta=eta,
            expires=_when(options.get("expires"), None, relative_ok=True),
            priority=options.get("priority"),
            retries=options.get("retries", 0),
            time_limit=options.get("time_limit"),
            soft_time_limit=options.get("soft_time_limit"),
            shadow=options.get("shadow"),
            group=options.get("group_id"),
            group_index=options.get("group_index"),
            root_id=options.get("root_id") or (parent.root_id or parent.id),
            parent_id=options.get("parent_id") or parent.id,
            ignore_result=bool(options.get("ignore_result", self.conf.task_ignore_result)),
            reply_to=options.get("reply_to") or self._reply_to(),
            link=_sigs(options.get("link")),
            link_error=_sigs(options.get("link_error")),
            chain=options.get("chain"),
            chord=options.get("chord"),
            headers=options.get("headers"),
            serializer=options.get("serializer") or self.conf.task_serializer,
            compression=options.get("compression") or self.conf.task_compression,
        )
        try:
            wire = encode_task(message)
        except ValidationError as exc:
            raise ValidationError(_argument_path(exc.path), exc.reason) from None
        if self.conf.security_signing_key:
            wire = sign(wire, self.conf.security_signing_key, self.conf.security_signing_key_id)
        queue = self.route(name, options.get("queue"))
        self.declare(queue)
        if eta is not None and self.conf.task_eta_in_broker:
            # Due by our clock once the delay runs out, or already (the queue's declaration may
            # have taken longer than a short countdown): marked either way, so a worker whose
            # clock lags does not hold a due task for the difference (SPEC.md §2.9).
            delay = (eta - datetime.now(UTC)).total_seconds()
            self.producer().publish(
                queue, mark_broker_delayed(wire), delay=delay if delay > 0 else None
            )
        else:
            self.producer().publish(queue, wire)
        if self.conf.task_send_sent_event:
            from .events import event, send_event
            from .worker.execute import HOSTNAME

            h = message.headers
            send_event(
                self,
                event(
                    "task-sent",
                    HOSTNAME,
                    uuid=message.id,
                    name=name,
                    args=h.argsrepr,
                    kwargs=h.kwargsrepr,
                    retries=h.retries,
                    eta=h.eta.isoformat() if h.eta else None,
                    expires=h.expires.isoformat() if h.expires else None,
                    queue=queue,
                    exchange="",
                    routing_key=queue,
                    root_id=h.root_id,
                    parent_id=h.parent_id,
                ),
            )
        return AsyncResult(message.id, self)

    def AsyncResult(self, task_id: str, parent: AsyncResult[Any] | None = None) -> AsyncResult[Any]:
        """The result handle of a task id."""
        return AsyncResult(task_id, self, parent)


_WINDOWED: weakref.WeakSet[Transport] = weakref.WeakSet()


def _flush_at_exit(transport: Transport) -> None:
    """Publishes a windowed producer has not seen acknowledged are waited for at exit."""
    if not _WINDOWED:
        atexit.register(_flush_windowed)
    _WINDOWED.add(transport)


def _flush_windowed() -> None:
    for transport in list(_WINDOWED):
        try:
            transport.close()  # waits for every thread's unacknowledged publishes first
        except Exception as exc:
            logging.getLogger("celeriac").error(
                "at exit, tasks sent through %s were not all acknowledged by the broker: %s",
                type(transport).__name__,
                exc,
            )


def _sigs(value: Any) -> Sequence[Mapping[str, Any]] | None:
    if value is None:
        return None
    return [value] if isinstance(value, Mapping) else list(value)


def _when(at: Any, seconds: Any, relative_ok: bool = False) -> datetime | None:
    """An aware datetime from ``eta``/``expires`` (a datetime, or seconds from now)."""
    if at is None and seconds is None:
        return None
    if seconds is not None:
        return datetime.now(UTC) + timedelta(seconds=float(seconds))
    if isinstance(at, datetime):
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if relative_ok and isinstance(at, int | float):
        return datetime.now(UTC) + timedelta(seconds=float(at))
    raise TypeError(f"expected a datetime or seconds, got {at!r}")


def _argument_path(path: str) -> str:
    """``body[0][1]`` -> ``args[1]``, ``body[1].x`` -> ``kwargs.x``: the user's own names."""
    if path.startswith("body[0]"):
        return "args" + path[len("body[0]") :]
    if path.startswith("body[1]"):
        return "kwargs" + path[len("body[1]") :]
    return path
