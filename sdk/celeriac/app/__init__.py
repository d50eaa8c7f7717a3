"""The application: settings, registered tasks, and sending calls to the broker."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from celeriac.backends import ResultBackend, open_backend
from celeriac.protocol import ValidationError, encode_task, new_task_message
from celeriac.protocol.signing import sign
from celeriac.protocol.wire import mark_broker_delayed
from celeriac.transports import QueueSpec, Transport, open_transport, resolve
from celeriac.transports.errors import BrokerUnavailable
from celeriac.transports.registry import redact_url

from .. import signals
from ..aio.app import AsyncAppMixin
from ..bounds import check_retry_policy
from ..builtins import register_builtins
from ..config import Settings, environment, namespaced, settings_from
from ..control import Control
from ..exceptions import AlreadyRegistered, ImproperlyConfigured
from ..result import AsyncResult, GroupResult
from ..signals import Signal
from ..task import Task, current_request, running_request
from ..task_types import BoundTaskDecorator, TaskDecorator
from .fifo import FIFO_OPTIONS, fifo_properties
from .loading import _django_app_names, _import_object, _load_task_cls
from .producers import Producer, ProducerPool
from .registry import TaskRegistry
from .sending import (
    _apply_router,
    _argument_path,
    _before_publish,
    _checked_call_options,
    _flush_at_exit,
    _sigs,
)

if TYPE_CHECKING:
    from ..canvas import Signature
    from ..task import CoroutineTask

__all__ = ["App", "Celery", "TaskRegistry", "current_app", "current_task", "shared_task"]

P = ParamSpec("P")
R = TypeVar("R")

_SEND_OPTIONS = frozenset(
    (
        "countdown eta expires queue routing_key priority headers link link_error task_id shadow "
        "serializer compression retries time_limit soft_time_limit ignore_result group_id "
        "group_index chord chain root_id parent_id reply_to exchange max_retries "
        "default_retry_delay retry_backoff retry_backoff_max retry_jitter rate_limit acks_late "
        "reject_on_worker_lost track_started dont_autoretry_for retry_kwargs global_rate_limit "
        "retry retry_policy add_to_parent"
    ).split()
    + list(FIFO_OPTIONS)
)
# Task options that shape how a worker runs the task, not the message itself.
_WORKER_ONLY = frozenset(
    (
        "exchange max_retries default_retry_delay retry_backoff retry_backoff_max retry_jitter "
        "rate_limit acks_late reject_on_worker_lost track_started dont_autoretry_for retry_kwargs "
        "global_rate_limit"
    ).split()
)
#: This process's node id in ``reply_to`` oids (Kombu's ``get_node_id``: random, once).
_NODE_ID = uuid.uuid4().int
_HOSTNAME = socket.gethostname()
_current: App | None = None
_default: App | None = None
_state_lock = threading.RLock()
# Functions decorated with ``shared_task``: every app, existing or created later, gets them.
_shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []
_apps: weakref.WeakSet[App] = weakref.WeakSet()


def get_current_app() -> App:
    """The current app: the last one set current (by being created, or ``set_current``),
    else the default app, else a new app with the default settings, as Celery does."""
    global _current
    with _state_lock:
        if _current is None:
            _current = _default if _default is not None else App("default")
        return _current


class _CurrentApp:
    """``celeriac.current_app``: stands for whichever app is current when it is used, as
    Celery's proxy does (``current_app.conf``, ``current_app.tasks``); calling it gives the
    app itself."""

    def __call__(self) -> App:
        return get_current_app()

    def __getattr__(self, name: str) -> Any:
        return getattr(get_current_app(), name)

    def __repr__(self) -> str:
        return repr(get_current_app())


current_app = _CurrentApp()


class _CurrentTask:
    """``celeriac.current_task``: the task running in this thread or asyncio task (false when
    none is), as Celery's proxy: ``current_task.request.id``, ``current_task.update_state``."""

    def _task(self) -> Task[Any, Any] | None:
        name = current_request().task
        return None if name is None else get_current_app()._tasks.get(name)

    def __getattr__(self, name: str) -> Any:
        task = self._task()
        if task is None:
            raise AttributeError(f"no task is running here, so it has no {name!r}")
        return getattr(task, name)

    def __bool__(self) -> bool:
        return self._task() is not None

    def __repr__(self) -> str:
        return repr(self._task())


current_task = _CurrentTask()


def shared_task(*args: Any, **options: Any) -> Any:
    """Declare a task without naming an app (Celery's ``shared_task``, for reusable modules).

    Every app, existing or created later, registers it; the object returned stands for the
    task of whichever app is current. Use bare or with the options of ``app.task``.
    """

    def declare(fn: Callable[..., Any]) -> Any:
        with _state_lock:
            _shared.append((fn, options))
            for app in list(_apps):
                app._register_shared(fn, options)
        return _SharedTask(fn, options)

    if len(args) == 1 and callable(args[0]) and not options:
        return declare(args[0])
    if args:
        raise TypeError("shared_task takes the function, or keyword options only")
    return declare


class _SharedTask:
    """The task of the current app for a ``shared_task`` function."""

    def __init__(self, fn: Callable[..., Any], options: Mapping[str, Any]) -> None:
        self._fn = fn
        self._options = options
        self.__wrapped__ = fn
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "task")
        self.__module__ = getattr(fn, "__module__", __name__)

    def _task(self) -> Task[Any, Any]:
        return get_current_app()._register_shared(self._fn, self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __repr__(self) -> str:
        return repr(self._task())


class App(AsyncAppMixin):
    """A Celeriac application: ``App("proj", broker="redis://...", backend="redis://...")``,
    also importable as ``Celery``, with Celery's constructor arguments.

    ``main`` names the app (and the tasks of a script run as ``__main__``). Settings come from
    ``config`` (a mapping, or an object such as a module), then ``config_from_object``, then
    keyword arguments, then ``CELERIAC_*`` environment variables. With no broker or backend
    given, both are SQLite files in the working directory, so nothing needs a server.
    """

    def __init__(
        self,
        main: str | None = None,
        loader: Any = None,
        backend: str | None = None,
        amqp: Any = None,
        events: Any = None,
        log: Any = None,
        control: Any = None,
        set_as_current: bool = True,
        tasks: Any = None,
        broker: str | Sequence[str] | None = None,
        include: Sequence[str] | None = None,
        changes: Mapping[str, Any] | None = None,
        config_source: Any = None,
        fixups: Any = None,
        task_cls: type[Task[Any, Any]] | str | None = None,
        autofinalize: bool = True,
        namespace: str | None = None,
        strict_typing: bool = True,
        *,
        config: Mapping[str, Any] | object | None = None,
        **settings: Any,
    ) -> None:
        unsupported = {
            "loader": loader,
            "amqp": amqp,
            "events": events,
            "log": log,
            "control": control,
            "tasks": tasks,
            "fixups": fixups or None,
        }
        for arg, value in unsupported.items():
            if value is not None:
                raise TypeError(
                    f"App({arg}=...): Celery's {arg} classes are not pluggable in Celeriac"
                )
        global _current
        self.main = main
        self.namespace = namespace
        self.autofinalize = autofinalize
        self.strict_typing = strict_typing
        self.finalized = False
        self._finalize_lock = threading.RLock()
        self._pending_discovery: list[tuple[Any, str]] = []
        conf = settings_from(config)
        settings.update(changes or {})
        if broker is not None:
            settings["broker_url"] = broker
        if backend is not None:
            settings["result_backend"] = backend
        if include is not None:
            settings["include"] = tuple(include)
        #: What the constructor was given: it wins over ``config_from_object``, as in Celery.
        self._given = dict(settings)
        self.conf: Settings = settings_from(settings, base=conf, environ=environment())
        self._tasks: TaskRegistry = TaskRegistry()
        #: The class ``@app.task`` makes tasks of (Celery's ``app.Task``); assignable, or set
        #: with ``task_cls=``, for a base class every task of the app shares.
        self.Task: type[Task[Any, Any]] = _load_task_cls(task_cls) if task_cls else Task
        self._local = threading.local()
        self._backend: ResultBackend | None = None
        self._lock = threading.Lock()
        self._producers: ProducerPool | None = None
        self.control = Control(self)
        self.on_configure = Signal("app.on_configure")
        self.on_after_configure = Signal("app.on_after_configure")
        self.on_after_finalize = Signal("app.on_after_finalize")
        self.on_after_fork = Signal("app.on_after_fork")
        register_builtins(self)
        if config_source is not None:
            self.config_from_object(config_source)
        with _state_lock:
            if set_as_current:
                _current = self
            _apps.add(self)
            for fn, options in _shared:
                self._register_shared(fn, options)

    @property
    def tasks(self) -> TaskRegistry:
        """The registered tasks by name; reading it finalizes the app (imports ``include``
        modules, runs pending ``autodiscover_tasks``), as Celery's ``app.tasks`` does."""
        if not self.finalized and self.autofinalize:
            self.finalize(auto=True)
        return self._tasks

    # -- configuration -------------------------------------------------------------------------
    def config_from_object(
        self,
        obj: Any,
        silent: bool = False,
        force: bool = False,
        namespace: str | None = None,
    ) -> bool:
        """Read settings from an object, a module, or a name of one (``"celeryconfig"``,
        ``"proj.settings"``, ``"django.conf:settings"``). With ``namespace="CELERY"`` only
        names starting with ``CELERY_`` are read (prefix removed); the rest is left alone.
        Settings given to the constructor still win. ``silent``: a name that cannot be
        imported returns False instead of raising."""
        if isinstance(obj, str):
            try:
                obj = _import_object(obj)
            except ImportError:
                if silent:
                    return False
                raise
        namespace = namespace or self.namespace
        values: Any = namespaced(obj, namespace) if namespace else obj
        source = settings_from(values, base=self.conf)
        self.conf = settings_from(self._given, base=source, environ=environment())
        return True

    def config_from_envvar(
        self, variable_name: str, silent: bool = False, force: bool = False
    ) -> bool:
        """``config_from_object`` of the module named by the environment variable."""
        module_name = os.environ.get(variable_name)
        if not module_name:
            if silent:
                return False
            raise ImproperlyConfigured(
                f"the environment variable {variable_name!r} is not set; it should name a module "
                "of settings"
            )
        return self.config_from_object(module_name, silent=silent, force=force)

    def autodiscover_tasks(
        self, packages: Any = None, related_name: str | None = "tasks", force: bool = False
    ) -> None:
        """Import ``<package>.tasks`` of each package (a list, or a callable giving one, as
        ``lambda: settings.INSTALLED_APPS``; by default Django's installed apps) when the app
        is finalized, or now with ``force``. Packages without such a module are skipped."""
        with self._finalize_lock:
            if force or self.finalized:
                self._discover(packages, related_name)
            else:
                self._pending_discovery.append((packages, related_name or "tasks"))

    def _discover(self, packages: Any, related_name: str | None) -> None:
        if callable(packages):
            packages = packages()
        if packages is None:
            packages = _django_app_names()
        for package in packages:
            name = f"{package}.{related_name}" if related_name else str(package)
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise  # no such package, or its module imports something missing

    def finalize(self, auto: bool = False) -> None:
        """Import the ``imports``/``include`` modules and discovered task modules, so every
        task is registered; sends ``on_after_configure`` then ``on_after_finalize``."""
        with self._finalize_lock:
            if self.finalized:
                return
            self.finalized = True
            if os.environ.get("DJANGO_SETTINGS_MODULE") and importlib.util.find_spec("django"):
                import django

                django.setup()  # as Celery's Django fix-up does, before task modules import
            self.on_after_configure.send(sender=self, source=self.conf)
            signals.import_modules.send(sender=self)
            for module in (*self.conf.imports, *self.conf.include):
                importlib.import_module(module)
            pending, self._pending_discovery = self._pending_discovery, []
            for packages, related_name in pending:
                self._discover(packages, related_name)
            self.on_after_finalize.send(sender=self)

    def start(self, argv: Sequence[str] | None = None) -> int | None:
        """Run the ``celeriac`` command line for this app (Celery's ``app.start``):
        ``app.start(["worker", "-l", "info"])``; without ``argv``, the process's arguments.
        Returns the exit code of a command that exits."""
        import click

        from ..cli import main
        from ..cli.loading import preloaded

        args = list(sys.argv[1:] if argv is None else argv)
        with preloaded(self):
            try:
                main.main(args=args, standalone_mode=False)
            except click.exceptions.Exit as exc:
                return int(exc.exit_code)
        return None

    def worker_main(self, argv: Sequence[str] | None = None) -> int | None:
        """Start a worker for this app: ``app.worker_main(["worker", "-l", "info"])``."""
        args = list(sys.argv[1:] if argv is None else argv)
        if "worker" not in args:
            raise ValueError(
                "The worker sub-command must be specified in argv.\n"
                "Use app.start() to programmatically start other commands."
            )
        return self.start(args)

    def register_task(self, task: Task[Any, Any] | type[Task[Any, Any]]) -> Task[Any, Any]:
        """Register a task object, or a class-based task (Celery's ``app.register_task``)."""
        if isinstance(task, type):
            task = task(self)
        task.app = self
        existing = self._tasks.get(task.name)
        if existing is not None and existing is not task and type(existing) is not type(task):
            raise AlreadyRegistered(f"task name {task.name!r} is taken by {existing!r}")
        self._tasks[task.name] = task
        return task

    def __repr__(self) -> str:
        return f"<App {self.main or '__main__'} broker={redact_url(self.conf.broker_url)}>"

    def set_current(self) -> None:
        """Make this the app that ``current_app`` and app-less signatures use."""
        global _current
        with _state_lock:
            _current = self

    def set_default(self) -> None:
        """Make this the app used when no app is current (Celery's ``set_default``)."""
        global _default
        with _state_lock:
            _default = self

    # -- tasks ---------------------------------------------------------------------------------
    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> CoroutineTask[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R]) -> Task[P, R]: ...
    @overload
    def task(
        self, *, name: str | None = None, bind: Literal[True], **options: Any
    ) -> BoundTaskDecorator: ...
    @overload
    def task(
        self, *, name: str | None = None, bind: Literal[False] = False, **options: Any
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        bind: bool = False,
        **options: Any,
    ) -> Any:
        """Register a function (sync or ``async def``) as a task; use bare or with options."""

        # Celery's registration switches: tasks are registered on this app, at once, either way.
        options.pop("shared", None)
        options.pop("lazy", None)

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            task_name = name or self.gen_task_name(f.__name__, f.__module__)
            existing = self._tasks.get(task_name)
            if existing is not None and _origin(existing.fn) != _origin(f):
                raise AlreadyRegistered(
                    f"task name {task_name!r} is taken by {_origin(existing.fn)}; "
                    f"{_origin(f)} needs another name (name=...)"
                )
            cls = options.pop("base", None) or self.Task
            task: Task[Any, Any] = cls(self, f, task_name, bind=bind, **options)
            self._tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def gen_task_name(self, name: str, module: str | None) -> str:
        """A task's name as Celery makes it: ``<module>.<function>``; a function of the script
        being run (``__main__``) takes the app's ``main`` name in place of the module's."""
        module_name = module or "__main__"
        loaded = sys.modules.get(module_name)
        if loaded is not None:
            module_name = loaded.__name__
        if module_name == "__main__" and self.main:
            return f"{self.main}.{name}"
        return ".".join(part for part in (module_name, name) if part)

    def _register_shared(
        self, fn: Callable[..., Any], options: Mapping[str, Any]
    ) -> Task[Any, Any]:
        """This app's task for a ``shared_task`` function (registered on first need)."""
        name = options.get("name") or self.gen_task_name(fn.__name__, fn.__module__)
        task = self._tasks.get(name)
        if task is None or task.fn is not fn:
            task = self.task(fn, **options)
        return task

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
                options["serializer"] = self.conf.result_serializer
                if self.conf.result_backend.startswith("rpc:"):
                    options["broker_url"] = self.conf.broker_url  # results go over the broker
                self._backend = open_backend(self.conf.result_backend, **options)
            return self._backend

    def _reply_to(self) -> str | None:
        """Where results come back to when they travel as messages (rpc://); with any other
        backend, as Celery's client, an id of this app in this process and thread (Celery's
        ``thread_oid``), which workers storing results ignore."""
        backend = self.conf.result_backend
        if backend and backend.startswith("rpc:"):
            return self.backend.reply_queue()
        oid: str | None = getattr(self._local, "oid", None)
        if oid is None:
            who = f"{_NODE_ID:x}-{os.getpid():x}-{threading.get_ident():x}-{id(self):x}"
            oid = self._local.oid = str(uuid.uuid3(uuid.NAMESPACE_OID, who))
        return oid

    @property
    def producers(self) -> ProducerPool:
        """The pool of connections every thread and asyncio caller of this process sends tasks
        through: at most ``broker_pool_limit`` of them."""
        pool = self._producers
        if pool is None:
            with self._lock:
                if self._producers is None:
                    self._producers = ProducerPool(self._open_producer, self.conf.broker_pool_limit)
                pool = self._producers
        return pool

    def _open_producer(self) -> Transport:
        options = self.conf.broker_options()
        if "publish_window" not in options and "confirm_publish" not in options:
            # RabbitMQ: confirms read in bulk, not a disk sync waited for in each delay()
            # (the README's guarantee: flushed at app.flush(), exit, and a worker's settle).
            window = resolve(self.conf.broker_url).client_publish_window
            if window:
                options["publish_window"] = window
        transport = open_transport(self.conf.broker_url, **options)
        if options.get("publish_window"):
            _flush_at_exit(transport)
        return transport

    def producer(self) -> Transport:
        """This thread's own connection to the broker, for what is not a task's publish
        (remote control, events, the CLI's queue tools); tasks go through :attr:`producers`."""
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
        """Return once the broker acknowledged every task sent through the pool (with the
        transport option ``publish_window``, ``delay`` returns before that; see
        ``Transport.flush``)."""
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is not None:
            transport.flush()
        if self._producers is not None:
            self._producers.flush()

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
        self._producers = None

    def close_thread_connection(self) -> None:
        """Close this thread's own broker connection (:meth:`producer`'s), if it opened one:
        a short-lived thread's, once it is done (the connection outlives the thread)."""
        transport = getattr(self._local, "transport", None)
        if transport is not None:
            transport.close()
            self._local.transport = None

    def close(self) -> None:
        """Close this thread's broker connection, the pool's idle ones and the result backend."""
        self.close_thread_connection()
        if self._producers is not None:
            self._producers.close()
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # -- sending -------------------------------------------------------------------------------
    def route(
        self,
        name: str,
        queue: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """The queue a call of task ``name`` goes to: explicit, else ``task_routes``, else the
        default queue. ``task_routes`` is Celery's: a mapping of names, globs (``"proj.*"``) or
        compiled regexes to a queue name or ``{"queue": ...}``, or a list of such mappings and
        router functions ``(name, args, kwargs, options, task=None, **kw)``, tried in order."""
        if queue:
            return queue
        routers = self.conf.task_routes
        if not routers and (routers is None or type(routers) in (dict, list, tuple)):
            return self.conf.task_default_queue  # no routes (the default): nothing to try
        for router in [routers] if isinstance(routers, Mapping) else list(routers or ()):
            target = _apply_router(router, name, args, kwargs or {}, options or {}, self)
            if target:
                return target
        return self.conf.task_default_queue

    def signature(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature[Any]:
        """A signature of task ``name`` bound to this app (Celery's ``app.signature``)."""
        from ..canvas import Signature

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
        from ..canvas import Signature
        from ..schedules import maybe_schedule

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
        if not _SEND_OPTIONS.issuperset(options):
            unknown = set(options) - _SEND_OPTIONS
            raise TypeError(f"unknown option(s) for {name}: {sorted(unknown)}")
        if self.conf.task_always_eager and name in self.tasks:
            return self.tasks[name].apply(args, kwargs, **options)
        eta, expires, limits, retries = _checked_call_options(name, options)
        parent = running_request()
        message = new_task_message(
            name,
            tuple(args),
            dict(kwargs or {}),
            task_id=options.get("task_id"),
            eta=eta,
            expires=expires,
            priority=options.get("priority"),
            retries=retries,
            time_limit=limits[0],
            soft_time_limit=limits[1],
            shadow=options.get("shadow"),
            group=options.get("group_id"),
            group_index=options.get("group_index"),
            root_id=options.get("root_id") or (parent.root_id or parent.id if parent else None),
            parent_id=options.get("parent_id") or (parent.id if parent else None),
            ignore_result=bool(options.get("ignore_result", self.conf.task_ignore_result)),
            reply_to=options.get("reply_to") or self._reply_to(),
            # The producer's node name, as Celery's client writes it (``anon_nodename``).
            origin=f"gen{os.getpid()}@{_HOSTNAME}",
            link=_sigs(options.get("link")),
            link_error=_sigs(options.get("link_error")),
            chain=options.get("chain"),
            chord=options.get("chord"),
            headers=options.get("headers"),
            serializer=options.get("serializer") or self.conf.task_serializer,
            compression=options.get("compression") or self.conf.task_compression,
        )
        queue = self.route(name, options.get("queue"), args, kwargs, options)
        if signals.before_task_publish:
            message = _before_publish(message, queue)
        try:
            wire = encode_task(message)
        except ValidationError as exc:
            raise ValidationError(_argument_path(exc.path), exc.reason) from None
        if self.conf.security_signing_key:
            wire = sign(wire, self.conf.security_signing_key, self.conf.security_signing_key_id)
        fifo = fifo_properties(options, self.conf.broker_url)
        if fifo:
            wire = dataclasses.replace(wire, properties={**wire.properties, **fifo})
        retry = options.get("retry", self.conf.task_publish_retry)
        policy = self._retry_policy(name, options.get("retry_policy"))
        pool = self.producers
        for attempt in range(int(policy.get("max_retries") or 0) + 1 if retry else 1):
            try:
                # A producer whose connection broke is closed: the next attempt opens another.
                pool.run(_BROKEN, self._publish, queue, wire, eta)
                break
            except (BrokerUnavailable, ConnectionError) as exc:
                if not retry or attempt >= int(policy.get("max_retries") or 0):
                    raise
                # Celery's retry_policy spacing.
                wait = float(policy.get("interval_start", 0)) + attempt * float(
                    policy.get("interval_step", 0.2)
                )
                logging.getLogger("celeriac").warning(
                    "sending %s: %s; again in %.1f s", name, exc, wait
                )
                time.sleep(min(wait, float(policy.get("interval_max", 0.2))))
        if signals.after_task_publish:
            signals.after_task_publish.send(
                sender=name,
                body=(list(message.args), dict(message.kwargs), message.embed.to_wire()),
                headers=message.headers.to_wire(),
                exchange="",
                routing_key=queue,
            )
        if self.conf.task_send_sent_event:
            from ..events import event, send_event
            from ..worker.execute import HOSTNAME

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
        result: AsyncResult[Any] = AsyncResult(message.id, self)
        if parent is not None and options.get("add_to_parent", True):
            self._add_to_parent(result)
        return result

    def _retry_policy(self, name: str, per_call: Mapping[str, Any] | None) -> dict[str, Any]:
        """The checked publish retry policy of a call; the setting's own is checked once (while
        it stays equal), not at every ``delay()``."""
        setting = self.conf.task_publish_retry_policy
        if per_call:
            return check_retry_policy({**setting, **per_call}, f"{name}: retry_policy")
        cached = self.__dict__.get("_checked_retry_policy")
        if cached is None or cached[0] != setting:
            checked = check_retry_policy(setting, f"{name}: task_publish_retry_policy")
            cached = self.__dict__["_checked_retry_policy"] = (dict(setting), checked)
        policy: dict[str, Any] = cached[1]
        return policy

    def _add_to_parent(self, result: Any) -> None:
        """Record ``result`` as a child of the task running here, if any (Celery's trail,
        turned off by the task option ``trail=False``)."""
        parent = current_request()
        if parent.id is None:
            return
        task = self._tasks.get(parent.task or "")
        if task is not None and not task.options.get("trail", True):
            return
        parent.children.append(result)

    def _publish(self, producer: Producer, queue: str, wire: Any, eta: datetime | None) -> None:
        transport = producer.transport
        if queue not in producer.declared:
            transport.declare_queue(QueueSpec(queue))
            producer.declared.add(queue)
        if eta is not None and self.conf.task_eta_in_broker:
            # Due by our clock once the delay runs out, or already (the queue's declaration may
            # have taken longer than a short countdown): marked either way, so a worker whose
            # clock lags does not hold a due task for the difference (SPEC.md §2.9).
            delay = (eta - datetime.now(UTC)).total_seconds()
            transport.publish(queue, mark_broker_delayed(wire), delay=delay if delay > 0 else None)
        else:
            transport.publish(queue, wire)

    def AsyncResult(self, task_id: str, parent: AsyncResult[Any] | None = None) -> AsyncResult[Any]:
        """The result handle of a task id."""
        return AsyncResult(task_id, self, parent)

    @property
    def GroupResult(self) -> type[GroupResult[Any]]:
        """``GroupResult`` bound to this app, as Celery's: ``app.GroupResult(id, results)``,
        ``app.GroupResult.restore(id)``."""
        bound = self.__dict__.get("_group_result_class")
        if bound is None:
            bound = type("GroupResult", (GroupResult,), {"_default_app": self})
            self.__dict__["_group_result_class"] = bound
        return bound


#: Errors after which a publishing connection is not used again.
_BROKEN = (BrokerUnavailable, ConnectionError)

#: Celery's name for the application class: ``from celeriac import Celery``.
Celery = App


def _after_fork_in_child() -> None:
    """Send each live app's ``on_after_fork`` in a forked child (one hook for every app)."""
    for app in list(_apps):
        if app.on_after_fork:
            app.on_after_fork.send(sender=app)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _origin(fn: Callable[..., Any]) -> str:
    """Where a function is defined, to tell a re-registration from a clash of two functions."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
