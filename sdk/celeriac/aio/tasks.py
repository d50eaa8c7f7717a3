"""Sending from asyncio: ``await add.adelay(2, 3)`` and ``await add.aapply_async(...)``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .app import on_io_connection
from .bridge import send

if TYPE_CHECKING:
    from ..app import App
    from ..result import AsyncResult
    from ..task import CallArgs

__all__ = ["AsyncTaskMixin"]

P = ParamSpec("P")
R = TypeVar("R")


class AsyncTaskMixin(Generic[P, R]):
    """The asyncio half of :class:`~celeriac.task.Task`."""

    if TYPE_CHECKING:
        app: App

        def apply_async(
            self,
            args: CallArgs | None = None,
            kwargs: Mapping[str, Any] | None = None,
            **options: Any,
        ) -> AsyncResult[R]: ...

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """``delay`` for asyncio: the broker round trip runs off the event loop."""
        call: Callable[[], AsyncResult[R]] = functools.partial(self.apply_async, args, kwargs)
        return await send(self.app._io_flush, on_io_connection, self.app, call)

    async def aapply_async(
        self,
        args: CallArgs | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """``apply_async`` for asyncio (the same options: countdown, eta, queue, ...)."""
        call = functools.partial(self.apply_async, args, kwargs, **options)
        return await send(self.app._io_flush, on_io_connection, self.app, call)
