"""The types ``@app.task(...)`` returns, so a type checker sees each task's parameters and
result: ``async def`` tasks give their awaited type (and a coroutine when called directly),
``bind=True`` tasks drop ``self``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from .task import CoroutineTask, Task

__all__ = ["BoundTaskDecorator", "TaskDecorator"]

P = ParamSpec("P")
R = TypeVar("R")


class TaskDecorator(Protocol):
    """``@app.task(...)`` with options: a function becomes a ``Task[P, R]``."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> CoroutineTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class BoundTaskDecorator(Protocol):
    """``@app.task(bind=True, ...)``: the task itself comes first and is not a parameter."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
    ) -> CoroutineTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[Any, P], R], /) -> Task[P, R]: ...
