"""Sending from asyncio: ``await add.adelay(2, 3)`` and ``await add.aapply_async(...)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from .bridge import in_io_thread

if TYPE_CHECKING:
    from ..result import AsyncResult

__all__ = ["AsyncTaskMixin"]

P = ParamSpec("P")
R = TypeVar("R")


class AsyncTaskMixin(Generic[P, R]):
    """The asyncio half of :class:`~celeriac.task.Task`."""

    if TYPE_CHECKING:

        def apply_async(
            self,
            args: Sequence[Any] | None = None,
            kwargs: Mapping[str, Any] | None = None,
            **options: Any,
        ) -> AsyncResult[R]: ...

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """``delay`` for asyncio: the broker round trip runs off the event loop."""
        return await in_io_thread(self.apply_async, args, kwargs)

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """``apply_async`` for asyncio (the same options: countdown, eta, queue, ...)."""
        return await in_io_thread(self.apply_async, args, kwargs, **options)
