"""Running blocking client calls off the event loop, bridged back with ``asyncio.wrap_future``.

The broker clients we support (pika, boto3, kafka-python, kazoo, sqlite3, redis-py's sync
client) block, so an asyncio caller hands their calls to threads of this process:

- sends go to one I/O thread, through that thread's one broker connection per app. It takes
  every send queued meanwhile as a batch, writes them all, then waits once for the broker's
  acknowledgements (``App.flush``; pipelined on Redis and RabbitMQ) before any of the batch's
  callers resumes: a thousand concurrent sends cost a few round trips, not a thousand, and an
  awaited send is acknowledged exactly as a ``delay()`` is;
- calls that wait a long time (remote control gathering replies) go to a small pool, so they
  never hold up a send.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
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

_Job = tuple[Callable[[], Any], Callable[[], None] | None, "cf.Future[Any]"]


class _IOThread:
    """Runs jobs in order; a job with a ``flush`` resolves only once its flush returned."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="celeriac-io", daemon=True).start()

    def submit(self, call: Callable[[], T], flush: Callable[[], None] | None) -> cf.Future[T]:
        future: cf.Future[T] = cf.Future()
        self._jobs.put((call, flush, future))
        return future

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            unflushed: dict[Callable[[], None], list[tuple[cf.Future[Any], Any]]] = {}
            for call, flush, future in batch:
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled before it ran: nothing was sent
                try:
                    value = call()
                except BaseException as exc:
                    future.set_exception(exc)
                    continue
                if flush is None:
                    future.set_result(value)
                else:
                    unflushed.setdefault(flush, []).append((future, value))
            for flush, done in unflushed.items():
                try:
                    flush()
                except BaseException as exc:
                    for future, _ in done:
                        future.set_exception(exc)
                    continue
                for future, value in done:
                    future.set_result(value)


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
    return await asyncio.wrap_future(_io_thread().submit(_bound(fn, *args, **kwargs), flush))


async def in_io_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on this process's I/O thread (short calls, in order)."""
    return await asyncio.wrap_future(_io_thread().submit(_bound(fn, *args, **kwargs), None))


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a pool thread, for calls that wait a long time."""
    return await asyncio.wrap_future(_wait_pool().submit(_bound(fn, *args, **kwargs)))
