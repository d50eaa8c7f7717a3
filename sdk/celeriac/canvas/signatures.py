"""Signatures: a task call made into a dict, to send later or to put in a canvas (SPEC.md
§2.7); the base class of every canvas."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult
    from ..task import CallArgs
    from .chains import chain


#: What a signature's task returns (an ``async def`` task's awaited value).
R = TypeVar("R", covariant=True)
T = TypeVar("T")


class Signature(dict[str, Any], Generic[R]):
    """A task call to make later: ``{"task", "args", "kwargs", "options", "subtask_type",
    "immutable"}``. A plain dict on the wire; a callable object in code.

    ``Signature[R]`` is a call of a task returning ``R`` (``add.s(2)`` is a ``Signature[int]``
    for ``def add(x: int, y: int) -> int``): sending it gives an ``AsyncResult[R]``. Its
    arguments are not checked by a type checker (a signature may be partial), only when sent.
    """

    def __init__(
        self,
        task: str | Mapping[str, Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        subtask_type: str | None = None,
        immutable: bool = False,
        app: App | None = None,
        **more_options: Any,
    ) -> None:
        # Celery takes call options as keywords too: ``signature("t", (1,), countdown=5)``.
        if more_options:
            options = {**(options or {}), **more_options}
        if isinstance(task, Mapping):
            super().__init__(task)
            self.setdefault("args", [])
            self.setdefault("kwargs", {})
            self.setdefault("options", {})
            self.setdefault("subtask_type", None)
            self.setdefault("immutable", False)
            if more_options:
                self["options"] = {**self["options"], **more_options}
        else:
            super().__init__(
                task=task,
                args=list(args),
                kwargs=dict(kwargs or {}),
                options=dict(options or {}),
                subtask_type=subtask_type,
                immutable=immutable,
            )
        self._app = app

    @property
    def name(self) -> str:
        """The task's registered name."""
        return str(self["task"])

    @property
    def id(self) -> str | None:
        """The task id, once frozen."""
        task_id = self["options"].get("task_id")
        return None if task_id is None else str(task_id)

    @property
    def immutable(self) -> bool:
        """An immutable signature ignores its parent's result."""
        return bool(self["immutable"])

    def bind(self, app: App) -> Signature[R]:
        """Attach the app that will send it."""
        self._app = app
        return self

    def clone(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature[R]:
        """A copy with arguments added in front (partial application) and options merged."""
        new: Signature[R] = Signature(
            self["task"],
            list(args) + list(self["args"]) if not self.immutable else list(self["args"]),
            {**self["kwargs"], **(kwargs or {})} if not self.immutable else dict(self["kwargs"]),
            {**self["options"], **options},
            self["subtask_type"],
            self.immutable,
            self._app,
        )
        return new

    def freeze(self, task_id: str | None = None) -> str:
        """Give the signature its task id now, so its result can be named before it runs."""
        options = self["options"]
        options.setdefault("task_id", task_id or str(uuid.uuid4()))
        return str(options["task_id"])

    def set(self, **options: Any) -> Signature[R]:
        """Set call options (queue, countdown, priority, ...) in place."""
        self["options"].update(options)
        return self

    def link(self, callback: Signature[T]) -> Signature[T]:
        """Run ``callback`` with this task's result when it succeeds."""
        self["options"].setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Signature[T]) -> Signature[T]:
        """Run ``errback`` when this task fails."""
        self["options"].setdefault("link_error", []).append(errback)
        return errback

    def apply_async(
        self, args: CallArgs = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult[R]:
        """Send the call (arguments given here are added in front of the signature's).

        A task registered here has its arguments checked first, as ``Task.apply_async`` does.
        """
        app = self._require_app()
        sig = self.clone(args, kwargs, **options)
        task = app._tasks.get(sig.name)
        if task is not None and task.options.get("typing", app.strict_typing):
            task._check_arguments(sig["args"], sig["kwargs"])
        opts = dict(sig["options"])
        sent: AsyncResult[R] = app.send_task(sig.name, sig["args"], sig["kwargs"], **opts)
        return sent

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[R]:
        """Send the call with extra arguments."""
        return self.apply_async(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here, now, as a function call (Celery's ``sig()``); arguments given
        here are added in front of the signature's. Typed ``Any``: an ``async def`` task's
        call gives a coroutine, not ``R``."""
        sig = self.clone(args, kwargs)
        return self._task()(*sig["args"], **sig["kwargs"])

    def apply(
        self, args: CallArgs = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult[R]:
        """Run the task here, as a worker would, and return its stored result."""
        sig = self.clone(args, kwargs, **options)
        result: AsyncResult[R] = self._task().apply(sig["args"], sig["kwargs"], **sig["options"])
        return result

    def _task(self) -> Any:
        app = self._require_app()
        task = app.tasks.get(self.name)
        if task is None:
            raise KeyError(
                f"task {self.name!r} is not registered with {app!r}, so it cannot run here"
            )
        return task

    def __or__(self, other: Signature[T]) -> chain[T]:  # type: ignore[override]
        from .chains import chain  # here, not at the top: every canvas module imports this one

        return chain(self, other)

    def __ror__(self, other: Signature[Any]) -> chain[R]:  # type: ignore[override]
        # Python calls ``sig | sig`` through ``__or__`` above; this is here so type checkers do
        # not take dict's reflected ``|`` for it. A plain dict on the left keeps dict's merge.
        if isinstance(other, Signature):
            from .chains import chain

            return chain(other, self)
        return NotImplemented

    def _require_app(self) -> App:
        if self._app is None:
            from ..app import current_app

            self._app = current_app()
        return self._app


@overload
def signature(task: Signature[T], *args: Any, **kwargs: Any) -> Signature[T]: ...
@overload
def signature(task: str | Mapping[str, Any], *args: Any, **kwargs: Any) -> Signature[Any]: ...
def signature(task: str | Mapping[str, Any], *args: Any, **kwargs: Any) -> Signature[Any]:
    """A signature from a task name or a signature mapping (as Celery's ``signature``)."""
    return Signature(task, *args, **kwargs)


#: Celery's older name for ``signature``.
subtask = signature


def maybe_signature(value: Any, app: App | None = None) -> Signature[Any] | None:
    """``value`` as a Signature (a mapping becomes one); None stays None, as in Celery."""
    if value is None:
        return None
    sig: Signature[Any] = value if isinstance(value, Signature) else Signature(value)
    return sig.bind(app) if app is not None else sig


def _plain(value: Any) -> Any:
    """``value`` with its dicts and lists copied (leaves shared), signatures as plain dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _copy(value: Mapping[str, Any]) -> Signature[Any]:
    """A copy of a signature (a canvas too) that can be frozen without touching the original."""
    sig = _typed(_plain(value))
    if isinstance(value, Signature) and value._app is not None:
        sig.bind(value._app)
    return sig


#: How a signature of each canvas ``subtask_type`` becomes that canvas's class: each canvas
#: module adds its own, so this module needs none of them.
CANVAS_KINDS: dict[str, Callable[[Signature[Any]], Signature[Any]]] = {}


def _typed(value: Mapping[str, Any]) -> Signature[Any]:
    """A signature as its own canvas class (a chain, group or chord stays one)."""
    if isinstance(value, Signature):
        return value
    kind = value.get("subtask_type")
    sig: Signature[Any] = Signature(value)
    make = CANVAS_KINDS.get(kind) if isinstance(kind, str) else None
    if make is None:
        return sig
    typed = make(sig)
    # The canvas's own options (a frozen id, a chain to continue), and its partial arguments.
    typed["options"] = dict(sig["options"])
    typed["args"] = list(sig["args"])
    typed["immutable"] = sig.immutable
    return typed
