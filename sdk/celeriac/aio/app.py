"""The app's asyncio half: ``await app.asend_task(...)``, ``app.acontrol``, ``await
app.aclose()``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .bridge import BATCH, in_io_thread, send
from .control import AsyncControl

if TYPE_CHECKING:
    from celeriac.backends import ResultBackend
    from celeriac.config import Settings
    from celeriac.transports import Transport

    from ..app.producers import ProducerPool
    from ..control import Control
    from ..result import AsyncResult

__all__ = ["AsyncAppMixin", "on_io_connection"]

T = TypeVar("T")


def on_io_connection(app: AsyncAppMixin, call: Callable[[], T]) -> T:
    """``call()`` on the I/O thread, which holds one of ``app``'s pooled connections for a
    batch of sends and pipelines them on it (``publish_window``) where the broker can: the
    batch ends with :func:`io_flush`."""
    pool = app.producers
    if pool.pinned() is None:
        producer = pool.pin()
        previous = producer.transport.set_publish_window(BATCH)
        if previous:  # the app's own window is kept
            producer.transport.set_publish_window(previous)
        producer.window = previous
    return call()


def io_flush(app: AsyncAppMixin) -> None:
    """The end of a batch of sends on the I/O thread: wait for the broker's acknowledgements,
    then give the connection back to the pool (for sync callers too)."""
    pool = app.producers
    producer = pool.pinned()
    if producer is None:
        return
    try:
        producer.transport.flush()
    except BaseException:
        pool.unpin(discard=True)  # its connection broke: the next batch opens a new one
        raise
    producer.transport.set_publish_window(producer.window)
    pool.unpin()


class AsyncAppMixin:
    """The asyncio half of :class:`~celeriac.App`."""

    if TYPE_CHECKING:
        control: Control
        conf: Settings
        _backend: ResultBackend | None
        _local: threading.local

        @property
        def backend(self) -> ResultBackend: ...

        @property
        def producers(self) -> ProducerPool: ...

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
        return await send(self._io_flush, on_io_connection, self, call)

    def _io_flush(self) -> None:
        io_flush(self)

    @property
    def acontrol(self) -> AsyncControl:
        """``app.control`` for asyncio: ``await app.acontrol.ping()``,
        ``await app.acontrol.inspect().active()``."""
        return AsyncControl(self.control)

    async def aopen(self) -> None:
        """Open a pooled broker connection and the result backend now, off the event loop (an
        ASGI lifespan's startup), so the first request does not pay for it."""
        await in_io_thread(self._open_pooled)
        await in_io_thread(getattr, self, "backend")

    async def aclose(self) -> None:
        """Close the pool's idle broker connections and this event loop's result connections
        (an ASGI lifespan's shutdown)."""
        await in_io_thread(self.producers.close)
        if self._backend is not None:
            await self._backend.aclose()

    def _open_pooled(self) -> None:
        with self.producers.acquire() as producer:
            producer.transport.connect()
