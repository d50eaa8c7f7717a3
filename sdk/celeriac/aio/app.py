"""The app's asyncio half: ``await app.asend_task(...)``, ``app.acontrol``, ``await
app.aclose()``."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .bridge import in_io_thread
from .control import AsyncControl

if TYPE_CHECKING:
    from celeriac.backends import ResultBackend
    from celeriac.transports import Transport

    from ..control import Control
    from ..result import AsyncResult

__all__ = ["AsyncAppMixin"]


class AsyncAppMixin:
    """The asyncio half of :class:`~celeriac.App`."""

    if TYPE_CHECKING:
        control: Control
        _backend: ResultBackend | None
        _local: threading.local

        @property
        def backend(self) -> ResultBackend: ...

        def producer(self) -> Transport: ...

        def send_task(
            self,
            name: str,
            args: Sequence[Any] = (),
            kwargs: Mapping[str, Any] | None = None,
            **options: Any,
        ) -> AsyncResult[Any]: ...

    async def asend_task(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        """``send_task`` for asyncio: send a call of task ``name`` off the event loop."""
        return await in_io_thread(self.send_task, name, args, kwargs, **options)

    @property
    def acontrol(self) -> AsyncControl:
        """``app.control`` for asyncio: ``await app.acontrol.ping()``,
        ``await app.acontrol.inspect().active()``."""
        return AsyncControl(self.control)

    async def aopen(self) -> None:
        """Connect to the broker and the result backend now, off the event loop (an ASGI
        lifespan's startup), so the first request does not pay for it."""
        await in_io_thread(self.producer)
        await in_io_thread(getattr, self, "backend")

    async def aclose(self) -> None:
        """Close what asyncio callers opened: the I/O thread's broker connection and this
        event loop's result connections (an ASGI lifespan's shutdown)."""
        await in_io_thread(self._close_io_producer)
        if self._backend is not None:
            await self._backend.aclose()

    def _close_io_producer(self) -> None:
        transport = getattr(self._local, "transport", None)
        if transport is not None:
            transport.close()
            self._local.transport = None
