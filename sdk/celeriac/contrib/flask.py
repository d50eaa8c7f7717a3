"""Flask helpers: tasks that run inside the Flask application context, so they can use
``current_app``, extensions and their configuration as views do."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["in_app_context"]

P = ParamSpec("P")
R = TypeVar("R")


def in_app_context(flask_app: Flask) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a task's function (below ``@app.task``) to run in ``flask_app``'s context."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with flask_app.app_context():
                return fn(*args, **kwargs)

        return run

    return wrap
