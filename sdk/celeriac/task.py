"""Tasks: functions registered by name, sent with ``delay``/``apply_async``, run by workers."""

from __future__ import annotations

import contextvars
import inspect
import math
import random
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from celeriac.protocol.results import ResultRecord

from .aio.tasks import AsyncTaskMixin
from .bounds import check_count, check_delay, check_task_options
from .canvas import Signature
from .config import setting_or
from .exceptions import Ignore, MaxRetriesExceededError, Retry

if TYPE_CHECKING:
    from . import canvas as _canvas
    from .app import App
    from .result import AsyncResult

__all__ = ["CallArgs", "Context", "CoroutineTask", "Task", "current_request"]

P = ParamSpec("P")
R = TypeVar("R")

#: The positional arguments of ``apply_async``/``apply``: a tuple or a list (a type checker
#: then catches Celery's classic ``args=("x")``, a string, before a worker does).
CallArgs = tuple[Any, ...] | list[Any]

#: Options a task accepts, as Celery names them.
TASK_OPTIONS = frozenset(
    (
        "queue routing_key priority serializer compression max_retries default_retry_delay "
        "autoretry_for dont_autoretry_for retry_kwargs retry_backoff retry_backoff_max "
        "retry_jitter rate_limit global_rate_limit time_limit soft_time_limit acks_late "
        "reject_on_worker_lost ignore_result expires track_started shadow typing trail"
    ).split()
)


@dataclass
class Context:
    """``self.request`` inside a running task: who it is and how it was called."""

    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: datetime | None = None
    expires: datetime | None = None
    group: str | None = None
    group_index: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    chord: Mapping[str, Any] | None = None
    callbacks: Sequence[Mapping[str, Any]] | None = None
    errbacks: Sequence[Mapping[str, Any]] | None = None
    chain: Sequence[Mapping[str, Any]] | None = None
    delivery_info: Mapping[str, Any] = field(default_factory=dict)
    hostname: str | None = None
    is_eager: bool = False
    headers: Mapping[str, Any] = field(default_factory=dict)
    reply_to: str | None = None
    correlation_id: str | None = None
    origin: str | None = None
    ignore_result: bool = False
    shadow: str | None = None
    #: ``(time_limit, soft_time_limit)`` as the message gave them (Celery's ``timelimit``).
    timelimit: tuple[float | None, float | None] | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    replaced_task_nesting: int = 0
    stamped_headers: Sequence[str] | None = None
    stamps: Mapping[str, Any] | None = None
    #: The message's properties (``correlation_id``, ``reply_to``, ``priority``, ...).
    properties: Mapping[str, Any] = field(default_factory=dict)
    utc: bool = True
    #: Results of the tasks and groups sent while this task ran (Celery's trail), stored in
    #: its result record's ``children``.
    children: list[Any] = field(default_factory=list)

    @property
    def called_directly(self) -> bool:
        """True when the task was called as a function, not run by a worker or ``apply``."""
        return self.id is None

    @property
    def taskset(self) -> str | None:
        """Celery's old name for ``group``."""
        return self.group

    def get(self, key: str, default: Any = None) -> Any:
        """A field by name, else ``default`` (Celery's ``request.get``)."""
        return getattr(self, key, default)


def _retried(retry_for: Sequence[type], options: Mapping[str, Any]) -> type:
    """A class that ``isinstance`` finds an exception to be when ``autoretry_for`` names its
    type and ``dont_autoretry_for`` does not: whoever retries automatically by an isinstance
    check of ``option("autoretry_for")`` then honours both, as Celery does."""
    retry, dont = tuple(retry_for), tuple(options.get("dont_autoretry_for") or ())

    class Match(type):
        def __instancecheck__(cls, exc: Any) -> bool:
            return isinstance(exc, retry) and not isinstance(exc, dont)

    return Match("AutoRetried", (Exception,), {})


def _class_options(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is Task or not issubclass(klass, Task):
            continue
        found.update({k: v for k, v in vars(klass).items() if k in TASK_OPTIONS})
    return found


_request: contextvars.ContextVar[Context] = contextvars.ContextVar("celeriac_request")


def _positional_range(signature: inspect.Signature) -> tuple[float, float]:
    """How many positional arguments alone bind to ``signature``: ``(least, most)``, or an
    empty range when a keyword-only parameter without a default makes keywords necessary."""
    least, most = 0, 0.0
    for p in signature.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            most += 1
            least += p.default is p.empty
        elif p.kind is p.VAR_POSITIONAL:
            most = math.inf
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return (1.0, 0.0)
    return (float(least), most)


def current_request() -> Context:
    """The request of the task running in this thread or asyncio task."""
    running = _request.get(None)
    return Context() if running is None else running


def running_request() -> Context | None:
    """The request of the task running here, or None outside a task (no empty one built)."""
    return _request.get(None)


class Task(AsyncTaskMixin[P, R], Generic[P, R]):
    """A registered task. Call it to run it here; ``delay`` to have a worker run it."""

    def __init__(
        self,
        app: App | None = None,
        fn: Callable[..., R] | None = None,
        name: str | None = None,
        bind: bool = False,
        **options: Any,
    ) -> None:
        if fn is None:
            # A class-based task (``class Add(Task): def run(self, x, y)``, then
            # ``app.register_task(Add())``): its ``run`` is the body, named as Celery names it.
            if type(self).run is Task.run:
                raise TypeError(f"{type(self).__qualname__} defines no run() and got no function")
            fn = self.run
        if app is None:
            from .app import get_current_app

            app = get_current_app()
        if name is None:
            name = getattr(type(self), "name", None) or app.gen_task_name(
                type(self).__name__, type(self).__module__
            )
        unknown = set(options) - TASK_OPTIONS
        if unknown:
            raise TypeError(f"unknown task option(s) {sorted(unknown)} for task {name!r}")
        self.app = app
        self.fn = fn
        self.name = name
        self.bind = bind
        # Options a base class sets as class attributes (``autoretry_for = (IOError,)``, as
        # Celery's docs show), under the decorator's own.
        self.options = {**_class_options(type(self)), **options}
        check_task_options(self.options, f"task {name!r}")
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<@task: {self.name}>"

    def option(self, key: str, default: Any = None) -> Any:
        """A task option, else the app's ``task_<key>`` setting, else ``default``."""
        if key == "autoretry_for" and self.options.get("dont_autoretry_for"):
            return (_retried(self.options.get("autoretry_for") or (), self.options),)
        if key in self.options:
            return self.options[key]
        return setting_or(self.app.conf, f"task_{key}", default)

    #: (fn, whether it is ``async def``) for the last ``fn`` asked about: the worker asks for
    #: every call, and inspect's check costs about a microsecond each time.
    _async_of: tuple[Any, bool] | None = None

    @property
    def is_async(self) -> bool:
        """Whether the function is ``async def`` (run on the asyncio pool)."""
        fn, known = self.fn, self._async_of
        if known is None or known[0] is not fn:
            known = self._async_of = (fn, inspect.iscoroutinefunction(fn))
        return known[1]

    @property
    def request(self) -> Context:
        """The current call's context (inside a running task)."""
        return current_request()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The task's body: the decorated function (a bound task's gets the task first)."""
        if self.bind:
            return self.fn(self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        # Through ``run`` as in Celery, so a base class overriding ``__call__`` (Flask's
        # ContextTask: ``with app.app_context(): return self.run(...)``) wraps every run.
        result: R = self.run(*args, **kwargs)
        return result

    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Hook: called by the worker just before the task runs (override in a base class)."""

    # Celery's outcome hooks, for base classes to override. The worker calls them after the
    # outcome is stored, in Celery's order; one that raises is logged, the outcome stands.
    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        """Hook: after the task succeeded and its result was stored."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: Any,
    ) -> None:
        """Hook: after the task failed and its failure was stored (``einfo``: the
        exception and its traceback, a :class:`celeriac.einfo.ExceptionInfo`)."""

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: Any,
    ) -> None:
        """Hook: after the task was sent again for a retry (``exc``: the cause, or None)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: Any,
    ) -> None:
        """Hook: after each run, whatever its outcome (``retval``: the return value or the
        exception; ``einfo`` is None, as in Celery); not after a retry, ``Ignore`` or
        ``Reject``."""

    def run_with(self, request: Context, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run the task with ``request`` as ``self.request`` (what a worker does): the
        ``before_start`` hook, then ``__call__``, so overrides of either take part."""
        token = _request.set(request)
        try:
            self.before_start(str(request.id), args, kwargs)
            return self(*args, **kwargs)
        finally:
            _request.reset(token)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the call to a worker; the same as ``apply_async(args, kwargs)``."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: CallArgs | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Send the call with options: countdown, eta, expires, queue, priority, link, ...

        Arguments that do not fit the function's signature raise TypeError here, before
        anything is sent, as in Celery (turn off with the task option ``typing=False`` or
        ``App(strict_typing=False)``).
        """
        if self.options.get("typing", getattr(self.app, "strict_typing", True)):
            self._check_arguments(args or (), kwargs or {})
        merged = self.send_defaults()
        merged.update(options)
        return self.app.send_task(self.name, args or (), kwargs or {}, **merged)

    def send_defaults(self) -> dict[str, Any]:
        """The options each call of this task is sent with unless the call says otherwise
        (its queue, priority, limits, ...: what ``@app.task(...)`` was given)."""
        return {
            k: v for k, v in self.options.items() if k not in ("autoretry_for", "typing", "trail")
        }

    def _check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        if "_signature" not in self.__dict__:
            try:
                self.__dict__["_signature"] = inspect.signature(self.fn)
            except (TypeError, ValueError):  # a callable without one: nothing to check
                self.__dict__["_signature"] = None
        signature: inspect.Signature | None = self.__dict__["_signature"]
        if signature is not None:
            if not kwargs:  # the common delay(*args): a count in range binds, no bind() needed
                fits = self.__dict__.get("_positional_range") or _positional_range(signature)
                self.__dict__["_positional_range"] = fits
                n = len(args) + (1 if self.bind else 0)
                if fits[0] <= n <= fits[1]:
                    return
            bound = (self, *args) if self.bind else tuple(args)
            try:
                signature.bind(*bound, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.name}: {exc}") from None

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Run the task here and now, as a worker would, and return its stored result."""
        from .worker.execute import run_eagerly

        return run_eagerly(self, tuple(args or ()), dict(kwargs or {}), options)

    def subtask(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature[R]:
        """Celery's older name for ``signature``."""
        return self.signature(args, kwargs, **options)

    # A signature's arguments may be partial (a chain passes the previous result first), so a
    # type checker sees ``Any`` arguments; the result type ``R`` is carried.
    def s(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """A signature of this task (partial arguments)."""
        return Signature(self.name, args, kwargs, app=self.app)

    def si(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """An immutable signature: it ignores its parent's result."""
        return Signature(self.name, args, kwargs, immutable=True, app=self.app)

    def signature(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature[R]:
        """A signature with options."""
        return Signature(self.name, args, kwargs, options, app=self.app)

    def map(self, it: Sequence[Any]) -> _canvas.xmap[R]:
        """Celery's ``map``: this task on each item, in one message (``celery.map``)."""
        from .canvas import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Sequence[Sequence[Any]]) -> _canvas.xstarmap[R]:
        """Celery's ``starmap``: this task on each argument tuple, in one message."""
        from .canvas import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Sequence[Sequence[Any]], n: int) -> _canvas.chunks[R]:
        """Celery's ``chunks``: the argument tuples cut into parts of ``n``, one
        ``celery.starmap`` message each, sent as a group."""
        from .canvas import chunks

        return chunks(self.s(), it, n, app=self.app)

    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Send this call again later and end the current run (raise what this returns).

        Once ``max_retries`` is used up, re-raises ``exc`` (or a MaxRetriesExceeded error).
        """
        request = self.request
        if request.called_directly:
            # Called as a plain function, as Celery: the error stands, nothing is re-sent.
            raise exc if exc is not None else Retry("Task can be retried", None)
        if max_retries is not None:
            limit = check_count(max_retries, f"{self.name}: retry(max_retries)")
        else:
            limit = check_count(self.option("max_retries"), f"{self.name}: max_retries")
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{tuple(request.args)} "
                f"kwargs:{dict(request.kwargs)}",
                task_args=request.args,
                task_kwargs=request.kwargs,
            )
        when: Any
        if countdown is not None:
            delay: float | None = check_delay(countdown, f"{self.name}: retry(countdown)")
            when = delay
        elif options.get("eta") is not None:  # as Celery: an ETA given stands for the delay
            delay, when = None, options["eta"]
        else:
            delay = self._backoff(request.retries)
            when = delay
        self.app.send_task(
            self.name,
            args if args is not None else request.args,
            kwargs if kwargs is not None else request.kwargs,
            task_id=request.id,
            retries=request.retries + 1,
            countdown=delay,
            root_id=request.root_id,
            parent_id=request.parent_id,
            group_id=request.group,
            group_index=request.group_index,
            chord=request.chord,
            link=request.callbacks,
            link_error=request.errbacks,
            chain=request.chain,
            # Back to the queue it came from, as Celery's retry does.
            **{"queue": request.delivery_info.get("routing_key"), **options},
        )
        raise Retry(exc=exc, when=when)

    def _backoff(self, retries: int) -> float:
        # Checked here too: a setting (task_default_retry_delay) may stand in for the option.
        backoff = self.option("retry_backoff", False)
        if not backoff:
            return check_delay(
                self.option("default_retry_delay", 180.0) or 0.0,
                f"{self.name}: default_retry_delay",
            )
        factor = 1.0 if backoff is True else check_delay(backoff, f"{self.name}: retry_backoff")
        most = check_delay(self.option("retry_backoff_max", 600), f"{self.name}: retry_backoff_max")
        # 2**retries overflows a float past ~1024 retries: the cap applies before that.
        delay: float = most if retries >= 1024 else min(factor * (2**retries), most)
        if self.option("retry_jitter", True):
            delay = random.uniform(0, delay)
        return delay

    def AsyncResult(self, task_id: str) -> AsyncResult[R]:
        """The result handle of a call of this task (Celery's ``task.AsyncResult(id)``)."""
        from .result import AsyncResult

        return AsyncResult(task_id, self.app, task_name=self.name)

    def replace(self, sig: Signature[Any]) -> None:
        """End this run and have ``sig`` take its place: it runs under this task's id, in its
        group, chord and chain, so whoever waits for this result gets ``sig``'s (Celery's
        ``Task.replace``). Raises ``Ignore`` to end the run; call it as the last thing."""
        from .canvas import chain, chord, group

        request = self.request
        if request.called_directly:
            raise RuntimeError("replace() works only inside a task run by a worker or apply()")
        if isinstance(sig, group | chord | chain):
            raise NotImplementedError("replace() with a group, chord or chain is not supported yet")
        sig.clone().apply_async(
            task_id=request.id,
            group_id=request.group,
            group_index=request.group_index,
            chord=request.chord,
            chain=request.chain,
            link=request.callbacks,
            link_error=request.errbacks,
            root_id=request.root_id,
            parent_id=request.parent_id,
        )
        raise Ignore("Replaced by new task")

    def update_state(
        self, task_id: str | None = None, state: str = "PROGRESS", meta: Any = None
    ) -> None:
        """Store a custom state (progress) readable through ``AsyncResult.info``."""
        task_id = task_id or self.request.id
        if task_id is None:
            raise RuntimeError("update_state() needs a task id outside a running task")
        self.app.backend.store(ResultRecord(task_id, state, meta))


if TYPE_CHECKING:

    class CoroutineTask(Task[P, R]):
        """What ``@app.task`` makes of an ``async def`` function, for a type checker: calling it
        directly gives the coroutine (await it); ``delay``/``get()`` give the awaited ``R``."""

        def __call__(  # type: ignore[override]
            self, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, R]: ...

else:
    # Every task is a Task at run time; the name exists so annotations can use it.
    CoroutineTask = Task
