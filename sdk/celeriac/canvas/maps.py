"""One task over many items: ``xmap`` and ``xstarmap`` (one ``celery.map``/``celery.starmap``
message run in the worker) and ``chunks`` (the items cut into parts, a group of such messages)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .groups import group
from .signatures import CANVAS_KINDS, R, Signature

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult, GroupResult
    from ..task import CallArgs


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


CANVAS_KINDS["xmap"] = lambda sig: xmap(sig["kwargs"]["task"], sig["kwargs"]["it"])
CANVAS_KINDS["xstarmap"] = lambda sig: xstarmap(sig["kwargs"]["task"], sig["kwargs"]["it"])
CANVAS_KINDS["chunks"] = lambda sig: chunks(
    sig["kwargs"]["task"], sig["kwargs"]["it"], sig["kwargs"]["n"]
)
