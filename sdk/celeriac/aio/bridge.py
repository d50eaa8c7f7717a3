"""Running blocking client calls off the event loop, their outcomes handed back to it.

The broker clients we support (pika, boto3, kafka-python, kazoo, sqlite3, redis-py's sync
client) block, so an asyncio caller hands their calls to threads of this process:

- sends go to one I/O thread, through that thread's one broker connection per app. It takes
  every send queued meanwhile as a batch, writes them all, then waits once for the broker's
  acknowledgements (``App.flush``; pipelined on Redis and RabbitMQ) before any of the batch's
  callers resumes: a thousand concurrent sends cost a few round trips, not a thousand, and an
  awaited send is acknowledged exactly as a ``delay()`` is. The batch's outcomes go back to
  each event loop in one ``call_soon_threadsafe``;
- calls that wait a long time (remote control gathering replies) go to a small pool, so they
  never hold up a send (bridged with ``asyncio.wrap_future``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["in_io_thread", "in_thread", "send"]

P = ParamSpec("P")
T = TypeVar("T")

#: The most sends written before their acknowledgements are awaited.
BATCH = 1000

_lock = threading.Lock()
_io: tuple[int, _IOThread] | None = None
_pool: tuple[int, ThreadPoolExecutor] | None = None

_Job = tuple[
    Callable[[], Any], Callable[[], None] | None, asyncio.AbstractEventLoop, "asyncio.Future[Any]"
]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


#: Callers resumed per turn of the loop: a thousand resumed in one turn would hold the loop
#: for as long as all their next steps take (tens of ms).
SETTLE_CHUNK = 64


def _settle(outcomes: list[_Outcome], start: int = 0) -> None:
    """On the loop: hand a batch's callers their value or error, a chunk per turn."""
    end = start + SETTLE_CHUNK
    for future, value, error in outcomes[start:end]:
        if future.done():  # cancelled meanwhile
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
    if end < len(outcomes):
        # Queued after the wake-ups just scheduled: those callers run before the next chunk.
        asyncio.get_running_loop().call_soon(_settle, outcomes, end)


class _IOThread:
    """Runs jobs in order; a job with a ``flush`` resolves only once its flush returned."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="celeriac-io", daemon=True).start()

    def submit(self, call: Callable[[], T], flush: Callable[[], None] | None) -> asyncio.Future[T]:
        """Queue ``call`` from the running loop; the future it returns resolves on that loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((call, flush, loop, future))
        return future

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            unflushed: dict[Callable[[], None], list[tuple[asyncio.AbstractEventLoop, _Outcome]]]
            unflushed = {}
            for call, flush, loop, future in batch:
                if future.cancelled():  # gave up before it ran: nothing is sent
                    continue
                try:
                    value = call()
                except BaseException as exc:
                    done.setdefault(loop, []).append((future, None, exc))
                    continue
                if flush is None:
                    done.setdefault(loop, []).append((future, value, None))
                else:
                    unflushed.setdefault(flush, []).append((loop, (future, value, None)))
            for flush, waiting in unflushed.items():
                try:
                    flush()
                    error = None
                except BaseException as exc:
                    error = exc
                for loop, (future, value, _) in waiting:
                    done.setdefault(loop, []).append((future, value, error))
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(_settle, outcomes)
                except RuntimeError:  # that loop is closed: nobody waits any more
                    pass


def _io_thread() -> _IOThread:
    global _io
    with _lock:
        if _io is None or _io[0] != os.getpid():  # none yet, or inherited by a forked child
            _io = (os.getpid(), _IOThread())
        return _io[1]


def _wait_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(4, thread_name_prefix="celeriac-wait"))
        return _pool[1]


def _bound(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Callable[[], T]:
    # The caller's context travels along: a task sent from inside a running task keeps its
    # parent and root ids (``current_request``).
    return functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)


async def send(
    flush: Callable[[], None], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn(*args, **kwargs)`` on the I/O thread, resumed once ``flush`` (the app's) returned."""
    return await _io_thread().submit(_bound(fn, *args, **kwargs), flush)


async def in_io_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on this process's I/O thread (short calls, in order)."""
    return await _io_thread().submit(_bound(fn, *args, **kwargs), None)


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a pool thread, for calls that wait a long time."""
    return await asyncio.wrap_future(_wait_pool().submit(_bound(fn, *args, **kwargs)))
