"""The app's asyncio half: ``await app.asend_task(...)``, ``app.acontrol``, ``await
app.aclose()``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from celeriac.transports import open_transport

from .bridge import BATCH, in_io_thread, send
from .control import AsyncControl

if TYPE_CHECKING:
    from celeriac.backends import ResultBackend
    from celeriac.config import Settings
    from celeriac.transports import Transport

    from ..control import Control
    from ..result import AsyncResult

__all__ = ["AsyncAppMixin", "on_io_connection"]

T = TypeVar("T")

# Brokers whose transport can write sends without waiting for each acknowledgement.
_PIPELINED = frozenset(("redis", "rediss", "amqp", "amqps"))


def on_io_connection(app: AsyncAppMixin, call: Callable[[], T]) -> T:
    """``call()`` on the I/O thread, whose connection to ``app``'s broker pipelines sends
    (``publish_window``) where the broker can: the I/O thread flushes after each batch."""
    local = app._local
    if getattr(local, "transport", None) is None:
        options = dict(app.conf.broker_transport_options)
        if urlsplit(app.conf.broker_url).scheme in _PIPELINED and not options.get("publish_window"):
            options["publish_window"] = BATCH
            local.transport = open_transport(app.conf.broker_url, **options)
            local.declared = set()
    return call()


class AsyncAppMixin:
    """The asyncio half of :class:`~celeriac.App`."""

    if TYPE_CHECKING:
        control: Control
        conf: Settings
        _backend: ResultBackend | None
        _local: threading.local

        @property
        def backend(self) -> ResultBackend: ...

        def producer(self) -> Transport: ...

        def flush(self) -> None: ...

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
        call = functools.partial(self.send_task, name, args, kwargs, **options)
        return await send(self.flush, on_io_connection, self, call)

    @property
    def acontrol(self) -> AsyncControl:
        """``app.control`` for asyncio: ``await app.acontrol.ping()``,
        ``await app.acontrol.inspect().active()``."""
        return AsyncControl(self.control)

    async def aopen(self) -> None:
        """Connect to the broker and the result backend now, off the event loop (an ASGI
        lifespan's startup), so the first request does not pay for it."""
        await in_io_thread(on_io_connection, self, self.producer)
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
