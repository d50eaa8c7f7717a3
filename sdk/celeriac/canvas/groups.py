"""Groups, whose members run in parallel, and chords: a group whose results, in order, go to
one task (the body); both sent as Celery sends them (SPEC.md §2.8)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .signatures import CANVAS_KINDS, R, Signature, T, _copy, _typed

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult, GroupResult
    from ..task import CallArgs

G = TypeVar("G")  # a group's members' result (invariant: a list of them)


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
        from .chains import chain  # here, not at the top: chains imports this module

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
        from ..result import GroupResult

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
        from .chains import _freeze  # here, not at the top: chains imports this module

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
            from ..result import GroupResult

            app._add_to_parent(GroupResult(group_id, sent, app))
        return result


def _member_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A group member's options to send it with: its group's own ids replace any it carries
    (Celery's client freezes them into each member), and options only Celery's client reads
    are left out."""
    from ..app import _SEND_OPTIONS

    return {
        k: v
        for k, v in options.items()
        if k in _SEND_OPTIONS and k not in ("group_id", "group_index", "chord")
    }


CANVAS_KINDS["group"] = lambda sig: group(sig["kwargs"]["tasks"])
CANVAS_KINDS["chord"] = lambda sig: chord(sig["kwargs"]["header"], _typed(sig["kwargs"]["body"]))
