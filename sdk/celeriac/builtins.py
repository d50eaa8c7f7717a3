"""Celery's built-in canvas tasks, so ``map``, ``starmap`` and ``chunks`` messages run here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import App

__all__ = ["register_builtins"]


def register_builtins(app: App) -> None:
    """Register ``celery.map``, ``celery.starmap`` and ``celery.chunks`` on ``app``."""

    def _function(task: Mapping[str, Any]) -> Any:
        name = task["task"] if isinstance(task, Mapping) else str(task)
        registered = app.tasks.get(name)
        if registered is None:
            raise KeyError(f"task {name!r} is not registered with this worker")
        return registered

    @app.task(name="celery.map")
    def xmap(task: Mapping[str, Any], it: Sequence[Any]) -> list[Any]:
        fn = _function(task)
        return [fn(item) for item in it]

    @app.task(name="celery.starmap")
    def xstarmap(task: Mapping[str, Any], it: Sequence[Sequence[Any]]) -> list[Any]:
        fn = _function(task)
        return [fn(*item) for item in it]

    @app.task(name="celery.chunks")
    def chunks(task: Mapping[str, Any], it: Sequence[Sequence[Any]], n: int) -> list[Any]:
        fn = _function(task)
        return [fn(*item) for item in it]
