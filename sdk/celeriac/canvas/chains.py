"""Chains: steps run one after another, each given the previous one's result, sent as Celery
sends them (the first step's message carries the rest, SPEC.md §2.8)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, overload

from .groups import chord, group
from .signatures import CANVAS_KINDS, R, Signature, T, _copy, _typed

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult
    from ..task import CallArgs


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


def _freeze(step: Signature[Any], app: App) -> Any:
    """Give ``step`` (a task, group, chord or chain) its ids now, in place, and return the
    result that will hold what it returns (a GroupResult for a group)."""
    from ..result import GroupResult

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


CANVAS_KINDS["chain"] = lambda sig: chain(sig["kwargs"]["tasks"])
