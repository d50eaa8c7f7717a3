"""Awaiting results: ``await result``, ``await result.aget(timeout=)``, and ``async for`` over
a group's results in the order they finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from celeriac.protocol.results import ResultRecord
from celeriac.protocol.states import PROPAGATE_STATES

from .bridge import in_io_thread

if TYPE_CHECKING:
    from celeriac.backends import ResultBackend

    from ..app import App
    from ..result import AsyncResult

__all__ = ["AsyncGroupResultMixin", "AsyncResultMixin"]

R = TypeVar("R")


def _open_backend(app: App) -> ResultBackend:
    return app.backend


def _value(record: ResultRecord, propagate: bool) -> Any:
    if record.status in PROPAGATE_STATES and record.exception is not None:
        from ..result import exception_from

        exc = exception_from(record.exception)
        if propagate:
            raise exc
        return exc
    return record.result


class AsyncResultMixin(Generic[R]):
    """The asyncio half of :class:`~celeriac.result.AsyncResult`."""

    if TYPE_CHECKING:
        id: str
        app: App

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Await the result without blocking the event loop; re-raise the task's exception
        when ``propagate``. Raises TimeoutError after ``timeout`` seconds."""
        record: ResultRecord | None = getattr(self, "_ready_record", None)
        if record is None:
            # Opening the backend connects (a blocking call): not on the loop.
            backend = self.app._backend
            if backend is None:
                backend = await in_io_thread(_open_backend, self.app)
            record = await backend.wait_async(self.id, timeout)
            self._ready_record = record
        value: R = _value(record, propagate)
        return value

    async def astate(self) -> str:
        """The task's state, read off the event loop."""
        record = await in_io_thread(self.app.backend.get, self.id)
        return record.status

    def __await__(self) -> Generator[Any, None, R]:
        """``await result`` is ``await result.aget()``: no timeout, exceptions re-raised."""
        return self.aget().__await__()


class AsyncGroupResultMixin(Generic[R]):
    """The asyncio half of :class:`~celeriac.result.GroupResult`."""

    if TYPE_CHECKING:
        results: list[AsyncResult[R]]
        app: App | None

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> list[R]:
        """Every result, in the order of the group (awaiting at most ``timeout`` in all)."""
        async with _deadline(timeout, self.results):
            return list(await asyncio.gather(*(r.aget(propagate=propagate) for r in self.results)))

    async def as_completed(self, timeout: float | None = None) -> AsyncIterator[AsyncResult[R]]:
        """Each task's result handle as soon as it is ready (its ``await``/``aget`` then return
        at once); TimeoutError once ``timeout`` seconds have passed in all."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        waits = {asyncio.ensure_future(r.aget(propagate=False)): r for r in self.results}
        try:
            while waits:
                # A deadline of our own, not asyncio.timeout: that would cancel whatever the
                # caller awaits between two results, outside this generator.
                left = None if deadline is None else max(deadline - loop.time(), 0)
                done, _ = await asyncio.wait(
                    waits, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise TimeoutError(
                        f"a group of {len(self.results)} tasks not ready after {timeout} s"
                    )
                for future in done:
                    future.result()  # a backend error surfaces here
                    yield waits.pop(future)
        finally:
            for future in waits:
                future.cancel()

    def __aiter__(self) -> AsyncIterator[AsyncResult[R]]:
        """``async for result in group_result``: results in the order they finish."""
        return self.as_completed()


class _deadline:
    """``asyncio.timeout`` whose TimeoutError says which group did not finish."""

    def __init__(self, timeout: float | None, results: Sequence[AsyncResult[Any]]) -> None:
        self._timeout = asyncio.timeout(timeout)
        self._seconds = timeout
        self._count = len(results)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._timeout.__aexit__(*exc_info)
        except TimeoutError:
            raise TimeoutError(
                f"a group of {self._count} tasks not ready after {self._seconds} s"
            ) from None
