"""Signatures and the canvas (chain, group, chord), written into messages exactly as Celery
writes them (SPEC.md §2.7-2.8), so canvases cross between Celery and Celeriac."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from .app import App
    from .result import AsyncResult, GroupResult
    from .task import CallArgs

__all__ = [
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]


#: What a signature's task returns (an ``async def`` task's awaited value).
R = TypeVar("R", covariant=True)
T = TypeVar("T")
G = TypeVar("G")  # a group's members' result (invariant: a list of them)


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
        return chain(self, other)

    def __ror__(self, other: Signature[Any]) -> chain[R]:  # type: ignore[override]
        # Python calls ``sig | sig`` through ``__or__`` above; this is here so type checkers do
        # not take dict's reflected ``|`` for it. A plain dict on the left keeps dict's merge.
        if isinstance(other, Signature):
            return chain(other, self)
        return NotImplemented

    def _require_app(self) -> App:
        if self._app is None:
            from .app import current_app

            self._app = current_app()
        return self._app


@overload
def signature(task: Signature[T], *args: Any, **kwargs: Any) -> Signature[T]: ...
@overload
def signature(task: str | Mapping[str, Any], *args: Any, **kwargs: Any) -> Signature[Any]: ...
def signature(task: str | Mapping[str, Any], *args: Any, **kwargs: Any) -> Signature[Any]:
    """A signature from a task name or a signature mapping (as Celery's ``signature``)."""
    return Signature(task, *args, **kwargs)


class chain(Signature[R]):
    """Tasks run one after another, each getting the previous one's result: a ``chain[R]``
    returns what its last step returns (typed so for up to six steps given one by one)."""

    # The last step's result type, for the step counts people write; more steps, or steps in
    # an iterable of mixed signatures, give ``chain[Any]``.
    @overload
    def __init__(self: chain[T], t1: Signature[T], /, *, app: App | None = None) -> None: ...
    @overload
    def __init__(
        self: chain[T], t1: Signature[Any], t2: Signature[T], /, *, app: App | None = None
    ) -> None: ...
    @overload
    def __init__(
        self: chain[T],
        t1: Signature[Any],
        t2: Signature[Any],
        t3: Signature[T],
        /,
        *,
        app: App | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: chain[T],
        t1: Signature[Any],
        t2: Signature[Any],
        t3: Signature[Any],
        t4: Signature[T],
        /,
        *,
        app: App | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: chain[T],
        t1: Signature[Any],
        t2: Signature[Any],
        t3: Signature[Any],
        t4: Signature[Any],
        t5: Signature[T],
        /,
        *,
        app: App | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: chain[T],
        t1: Signature[Any],
        t2: Signature[Any],
        t3: Signature[Any],
        t4: Signature[Any],
        t5: Signature[Any],
        t6: Signature[T],
        /,
        *,
        app: App | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: chain[T], tasks: Iterable[Signature[T]], /, *, app: App | None = None
    ) -> None: ...
    @overload
    def __init__(
        self: chain[Any],
        *tasks: Signature[Any] | Iterable[Signature[Any]],
        app: App | None = None,
    ) -> None: ...

    def __init__(
        self, *tasks: Signature[Any] | Iterable[Signature[Any]], app: App | None = None
    ) -> None:
        flat: list[Signature[Any]] = []
        for t in tasks:
            for step in (
                t["kwargs"]["tasks"]
                if isinstance(t, chain)
                else [t]
                if isinstance(t, Signature)
                else list(t)
            ):
                step = _unrolled(_typed(step))
                last = flat[-1] if flat else None
                if isinstance(last, group) and not isinstance(step, group):
                    # A group followed by a step is a chord, as in Celery.
                    flat.pop()
                    step = chord(last.tasks, step, app=app or step._app)
                flat.append(step)
        super().__init__("celery.chain", (), {"tasks": flat}, subtask_type="chain", app=app)

    @property
    def tasks(self) -> list[Signature[Any]]:
        """The steps, first to run first."""
        return [_typed(t) for t in self["kwargs"]["tasks"]]

    def apply_async(
        self, args: CallArgs = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult[R]:
        """Send the first step; the rest travel in its message's ``chain`` (last to run first),
        groups and chords included, as Celery sends them (its ``prepare_steps``)."""
        steps: list[Signature[Any]] = []
        for step in self.tasks:
            steps.extend(_split_chord(step.clone() if type(step) is Signature else _copy(step)))
        if not steps:
            raise ValueError("an empty chain has nothing to run")
        # A group followed by anything is a chord whose body is what follows, read from the
        # end (``a | g1 | g2 | b`` runs g1 then ``chord(g2, b)``), as Celery's prepare_steps.
        for index in range(len(steps) - 2, -1, -1):
            if isinstance(steps[index], group):
                members = steps[index]["kwargs"]["tasks"]
                steps[index : index + 2] = [chord(members, steps[index + 1], app=self._app)]
        app = self._require_app()
        results = [_freeze(step, app) for step in steps]
        for previous, result in itertools.pairwise(results):
            _set_parent(result, previous)
        first, rest = steps[0], steps[1:]
        following = list(reversed(rest)) or None
        if isinstance(first, (chord, group)):
            first.bind(app).apply_async(args, kwargs, chain=following, **options)
        else:
            first = first.clone(args, kwargs, **options)
            app.send_task(
                first.name, first["args"], first["kwargs"], chain=following, **first["options"]
            )
        last: AsyncResult[R] = results[-1]
        return last

    def __or__(self, other: Signature[T]) -> chain[T]:  # type: ignore[override]
        joined: chain[T] = chain(*self.tasks, other, app=self._app)
        return joined


class group(Signature[list[G]]):
    """Tasks run in parallel; their results come back in order: a ``group[G]`` of
    ``Signature[G]`` members gives a ``GroupResult[G]`` whose ``get()`` is a ``list[G]``."""

    def __init__(
        self, *tasks: Signature[G] | Iterable[Signature[G]], app: App | None = None
    ) -> None:
        flat: list[Signature[G]] = []
        for t in tasks:
            flat.extend([t] if isinstance(t, Signature) else list(t))
        super().__init__("celery.group", (), {"tasks": flat}, subtask_type="group", app=app)

    @property
    def tasks(self) -> list[Signature[G]]:
        """The members, in order."""
        return [_typed(t) for t in self["kwargs"]["tasks"]]

    def __or__(self, other: Signature[T]) -> Signature[T]:  # type: ignore[override]
        """``group | task`` is a chord, as in Celery; ``group | group`` a chain."""
        if isinstance(other, group):
            return chain(self, other, app=self._app)
        if isinstance(other, chain):
            steps = other.tasks
            return chain(chord(self.tasks, steps[0], app=self._app), *steps[1:], app=self._app)
        return chord(self.tasks, other, app=self._app)

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Run every member here, in order (Celery's ``group()``... of signatures)."""
        return [task(*args, **kwargs) for task in self.tasks]

    def apply_async(  # type: ignore[override]
        self, args: CallArgs = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> GroupResult[G]:
        """Send every member with the group's id and its index."""
        from .result import GroupResult

        app = self._require_app()
        if options.pop("chain", None):
            raise ValueError("a group cannot be followed by steps: it becomes a chord")
        add_to_parent = options.pop("add_to_parent", True)
        group_id = (
            options.pop("group_id", None) or self["options"].get("task_id") or str(uuid.uuid4())
        )
        results: list[AsyncResult[G]] = []
        for index, task in enumerate(self.tasks):
            if type(task) is not Signature:
                # A canvas member (a chain, a chord): sent as its own canvas.
                results.append(
                    task.bind(app).apply_async(args, kwargs, add_to_parent=False, **options)
                )
                continue
            sig = task.clone(args, kwargs, **options)
            results.append(
                app.send_task(
                    sig.name,
                    sig["args"],
                    sig["kwargs"],
                    group_id=group_id,
                    group_index=index,
                    add_to_parent=False,
                    **_member_options(sig["options"]),
                )
            )
        result = GroupResult(group_id, results, app)
        if add_to_parent:  # the group is the running task's child, not each member (Celery's)
            app._add_to_parent(result)
        return result


class chord(Signature[R]):
    """A group (the header) whose results, in order, are passed to one task (the body): a
    ``chord[R]`` returns what its body returns."""

    def __init__(
        self,
        header: Iterable[Signature[Any]] | Mapping[str, Any],
        body: Signature[R],
        app: App | None = None,
    ) -> None:
        if isinstance(header, Mapping):  # a group (or its dict): its members, as Celery's
            header = _typed(header)["kwargs"].get("tasks", [header])
        super().__init__(
            "celery.chord",
            (),
            {"kwargs": {}, "header": list(header), "body": body},
            subtask_type="chord",
            app=app,
        )

    @property
    def tasks(self) -> list[Signature[Any]]:
        """The header's tasks."""
        return [_typed(t) for t in self["kwargs"]["header"]]

    @property
    def body(self) -> Signature[R]:
        """The task (or canvas) that gets the header's results."""
        body: Signature[R] = _typed(self["kwargs"]["body"])
        return body

    def on_error(self, errback: Signature[T]) -> Signature[T]:
        """Run ``errback`` if the chord fails (a header task, or the body), as Celery's."""
        body: Signature[R] = _typed(self["kwargs"]["body"])
        body.link_error(errback)
        self["kwargs"]["body"] = body
        return errback

    def apply_async(
        self,
        args: CallArgs = (),
        kwargs: Mapping[str, Any] | None = None,
        chain: Sequence[Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Send the header tasks, each carrying the body; the last to finish sends the body.
        ``chain`` (the steps after the chord, last to run first) travels in the body's options,
        as Celery sends it, so the body's message continues the chain."""
        app = self._require_app()
        header: list[Signature[Any]] = [Signature(t) for t in self["kwargs"]["header"]]
        for member in header:
            if member["subtask_type"] in ("chain", "group", "chord"):
                raise NotImplementedError(
                    f"a {member['subtask_type']} in a chord's header is not supported yet"
                )
        body: Signature[R] = _copy(self["kwargs"]["body"])
        if chain:
            body["options"]["chain"] = [dict(step) for step in chain]
        result: AsyncResult[R] = _freeze(body, app)
        group_id = str(uuid.uuid4())
        body["chord_size"] = len(header)
        if app.conf.result_backend and not app.backend.supports_chords:
            raise NotImplementedError(
                f"chords need a result backend that counts their parts; "
                f"{app.conf.result_backend.split(':')[0]}:// cannot (use redis:// or sqlite://)"
            )
        if app.conf.result_backend:
            # Celery's Redis backend counts the header against this (SPEC.md §7.5).
            app.backend.set_chord_size(group_id, len(header))
        add_to_parent = options.pop("add_to_parent", True)
        sent: list[AsyncResult[Any]] = []
        for index, task in enumerate(header):
            sig = task.clone(args, kwargs, **options)
            sent.append(
                app.send_task(
                    sig.name,
                    sig["args"],
                    sig["kwargs"],
                    group_id=group_id,
                    group_index=index,
                    chord=body,
                    add_to_parent=False,
                    **_member_options(sig["options"]),
                )
            )
        if add_to_parent:  # the header's group is the running task's child (Celery's)
            from .result import GroupResult

            app._add_to_parent(GroupResult(group_id, sent, app))
        return result


class _basemap(Signature[list[R]]):
    """One message that runs a task on every item, in the worker (Celery's built-in task
    ``celery.map``/``celery.starmap``)."""

    _builtin = ""
    _kind = ""

    def __init__(
        self, task: Mapping[str, Any], it: Iterable[Any], app: App | None = None, **options: Any
    ) -> None:
        super().__init__(
            self._builtin,
            (),
            {"task": dict(task), "it": [list(i) if isinstance(i, tuple) else i for i in it]},
            options,
            subtask_type=self._kind,
            immutable=True,
            app=app,
        )

    def apply_async(
        self, args: CallArgs = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncResult[list[R]]:
        """Send the one message, routed as the mapped task is (Celery's ``route_name``)."""
        app = self._require_app()
        task_name = str(self["kwargs"]["task"]["task"])
        options = {**self["options"], **options}
        options["queue"] = options.get("queue") or app.route(task_name, None, (), {}, options)
        sent: AsyncResult[list[R]] = app.send_task(self.name, (), dict(self["kwargs"]), **options)
        return sent


class xmap(_basemap[R]):
    """``task.map(items)``: the task called on each item, in one message (``celery.map``)."""

    _builtin = "celery.map"
    _kind = "xmap"


class xstarmap(_basemap[R]):
    """``task.starmap(tuples)``: the task called with each tuple's items as its arguments, in
    one message (``celery.starmap``)."""

    _builtin = "celery.starmap"
    _kind = "xstarmap"


class chunks(Signature[list[list[R]]]):
    """``task.chunks(tuples, n)``: the argument tuples cut into parts of ``n``, each part one
    ``celery.starmap`` message of a group, as Celery sends them."""

    def __init__(
        self,
        task: Mapping[str, Any],
        it: Iterable[Sequence[Any]],
        n: int,
        app: App | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"chunks: n must be a positive int, not {n!r}")
        super().__init__(
            "celery.chunks",
            (),
            {"task": dict(task), "it": [list(i) for i in it], "n": n},
            options,
            subtask_type="chunks",
            immutable=True,
            app=app,
        )

    def group(self) -> group[list[R]]:
        """The group of ``celery.starmap`` messages this sends."""
        task, items, n = self["kwargs"]["task"], self["kwargs"]["it"], self["kwargs"]["n"]
        parts = (items[i : i + n] for i in range(0, len(items), n))
        members: list[xstarmap[R]] = [xstarmap(task, part, app=self._app) for part in parts]
        return group(members, app=self._app)

    def apply_async(  # type: ignore[override]
        self, args: CallArgs = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> GroupResult[list[R]]:
        """Send the group of parts."""
        parts = self.group()
        parts.bind(self._require_app())
        return parts.apply_async(args, kwargs, **options)

    def __call__(self, **options: Any) -> GroupResult[list[R]]:
        """Send it, as Celery's ``chunks()`` does."""
        return self.apply_async(**options)


def _member_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A group member's options to send it with: its group's own ids replace any it carries
    (Celery's client freezes them into each member), and options only Celery's client reads
    are left out."""
    from .app import _SEND_OPTIONS

    return {
        k: v
        for k, v in options.items()
        if k in _SEND_OPTIONS and k not in ("group_id", "group_index", "chord")
    }


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


def _freeze(step: Signature[Any], app: App) -> Any:
    """Give ``step`` (a task, group, chord or chain) its ids now, in place, and return the
    result that will hold what it returns (a GroupResult for a group)."""
    from .result import GroupResult

    if isinstance(step, group):
        members = step.tasks
        step["kwargs"]["tasks"] = members
        group_id = step["options"].setdefault("task_id", str(uuid.uuid4()))
        return GroupResult(group_id, [_freeze(m, app) for m in members], app)
    if isinstance(step, chord):
        body = step.body
        step["kwargs"]["body"] = body
        return _freeze(body, app)
    if isinstance(step, chain):
        steps = step.tasks
        step["kwargs"]["tasks"] = steps
        results = [_freeze(s, app) for s in steps]
        for previous, result in itertools.pairwise(results):
            _set_parent(result, previous)
        return results[-1]
    return app.AsyncResult(step.freeze())


def _set_parent(result: Any, parent: Any) -> None:
    if getattr(result, "parent", None) is None and hasattr(result, "parent"):
        result.parent = parent


def _split_chord(step: Signature[Any]) -> list[Signature[Any]]:
    """A chord whose body is a chain led by a task, as the chord with that task for body,
    then the rest of the chain: Celery sends it so (a body is copied into every header
    task's message, so it should not carry the whole chain)."""
    if isinstance(step, chord) and isinstance(step.body, chain):
        steps = step.body.tasks
        if steps and type(steps[0]) is Signature:
            head = chord(step["kwargs"]["header"], steps[0], app=step._app)
            head["options"] = dict(step["options"])
            return [head, *steps[1:]]
    return [step]


def _unrolled(step: Signature[Any]) -> Signature[Any]:
    """A group of one task is that task, in a chain, as Celery's ``maybe_unroll_group``."""
    if isinstance(step, group) and len(step["kwargs"]["tasks"]) == 1:
        return _typed(step["kwargs"]["tasks"][0])
    return step


def _typed(value: Mapping[str, Any]) -> Signature[Any]:
    """A signature as its own canvas class (a chain, group or chord stays one)."""
    if isinstance(value, Signature):
        return value
    kind = value.get("subtask_type")
    sig: Signature[Any] = Signature(value)
    typed: Signature[Any]
    if kind == "group":
        typed = group(sig["kwargs"]["tasks"])
    elif kind == "chord":
        typed = chord(sig["kwargs"]["header"], _typed(sig["kwargs"]["body"]))
    elif kind == "chain":
        typed = chain(sig["kwargs"]["tasks"])
    elif kind in ("xmap", "xstarmap"):
        typed = (xmap if kind == "xmap" else xstarmap)(sig["kwargs"]["task"], sig["kwargs"]["it"])
    elif kind == "chunks":
        kw = sig["kwargs"]
        typed = chunks(kw["task"], kw["it"], kw["n"])
    else:
        return sig
    # The canvas's own options (a frozen id, a chain to continue), and its partial arguments.
    typed["options"] = dict(sig["options"])
    typed["args"] = list(sig["args"])
    typed["immutable"] = sig.immutable
    return typed


#: Celery's older name for ``signature``.
subtask = signature


def maybe_signature(value: Any, app: App | None = None) -> Signature[Any] | None:
    """``value`` as a Signature (a mapping becomes one); None stays None, as in Celery."""
    if value is None:
        return None
    sig: Signature[Any] = value if isinstance(value, Signature) else Signature(value)
    return sig.bind(app) if app is not None else sig
