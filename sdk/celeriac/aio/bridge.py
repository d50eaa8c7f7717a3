"""Running blocking client calls off the event loop, their outcomes handed back to it.

The broker clients we support (pika, boto3, kafka-python, kazoo, sqlite3, redis-py's sync
client) block, so an asyncio caller hands their calls to threads of this process:

- sends go to one I/O thread, through a connection it borrows from the app's pool (shared with
  threads calling ``delay()``). It takes every send queued meanwhile as a batch, writes them
  all, then waits once for the broker's acknowledgements and gives the connection back
  (``celeriac.aio.app.io_flush``; pipelined on Redis and RabbitMQ) before any of the batch's
  callers resumes: a thousand concurrent sends cost a few round trips, not a thousand, and an
  awaited send is acknowledged exactly as a ``delay()`` is. The batch's outcomes go back to
  each event loop in one ``call_soon_threadsafe``;
- the loop and the I/O thread share one GIL, so neither holds it long: the sends a turn of the
  loop queued go to the I/O thread at the end of that turn, all at once (not one wake-up each,
  which would start the thread competing with the rest of the turn), and the I/O thread lets
  the GIL go after each millisecond of work (else the loop would wait for it up to the
  interpreter's 5 ms switch interval, each time it woke up);
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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["in_io_thread", "in_thread", "send"]

P = ParamSpec("P")
T = TypeVar("T")

#: The most sends written before their acknowledgements are awaited.
BATCH = 1000
#: The I/O thread's longest run holding the GIL, and how long it then lets it go: long enough
#: for a thread waiting on it (the loop) to wake up and take it.
HOLD = 0.001
PAUSE = 0.0001

_lock = threading.Lock()
_io: tuple[int, _IOThread] | None = None
_pool: tuple[int, ThreadPoolExecutor] | None = None

_Job = tuple[
    Callable[[], Any], Callable[[], None] | None, asyncio.AbstractEventLoop, "asyncio.Future[Any]"
]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


#: Callers resumed per turn of the loop: a thousand resumed in one turn would hold the loop
#: for as long as all their next steps take (tens of ms).
SETTLE_CHUNK = 32


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
        self._jobs: queue.SimpleQueue[list[_Job]] = queue.SimpleQueue()
        #: Jobs queued in this turn of each loop, handed over at its end.
        self._turn: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        threading.Thread(target=self._run, name="celeriac-io", daemon=True).start()

    def submit(self, call: Callable[[], T], flush: Callable[[], None] | None) -> asyncio.Future[T]:
        """Queue ``call`` from the running loop; the future it returns resolves on that loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        jobs = self._turn.get(loop)
        if jobs is None:
            jobs = self._turn[loop] = []
            loop.call_soon(self._hand_over, loop)
        jobs.append((call, flush, loop, future))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._jobs.put(self._turn.pop(loop))

    def _run(self) -> None:
        held = time.perf_counter()  # when the GIL was last let go
        waiting: list[_Job] = []
        while True:
            if not waiting:
                waiting = self._jobs.get()
                held = time.perf_counter()  # idle until now, holding nothing
            while len(waiting) < BATCH:
                try:
                    waiting += self._jobs.get_nowait()
                except queue.Empty:
                    break
            batch, waiting = waiting[:BATCH], waiting[BATCH:]
            done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            unflushed: dict[Callable[[], None], list[tuple[asyncio.AbstractEventLoop, _Outcome]]]
            unflushed = {}
            for call, flush, loop, future in batch:
                if time.perf_counter() - held > HOLD:
                    time.sleep(PAUSE)
                    held = time.perf_counter()
                if future.cancelled():  # gave up before it ran: nothing is sent
                    continue
                if flush is not None:  # flushed even if every send fails: it ends the batch
                    sent = unflushed.setdefault(flush, [])
                try:
                    value = call()
                except BaseException as exc:
                    done.setdefault(loop, []).append((future, None, exc))
                    continue
                if flush is None:
                    done.setdefault(loop, []).append((future, value, None))
                else:
                    sent.append((loop, (future, value, None)))
            for flush, sent in unflushed.items():
                try:
                    flush()
                    error = None
                except BaseException as exc:
                    error = exc
                for loop, (future, value, _) in sent:
                    done.setdefault(loop, []).append((future, value, error))
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(_settle, outcomes)
                except RuntimeError:  # that loop is closed: nobody waits any more
                    pass


def _io_thread() -> _IOThread:
    global _io
    io = _io
    if io is not None and io[0] == os.getpid():  # every send asks: no lock on the way
        return io[1]
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


def send(
    flush: Callable[[], None], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> asyncio.Future[T]:
    """``fn(*args, **kwargs)`` on the I/O thread: a future of the running loop, resolved once
    ``flush`` (the batch's end) returned. A plain function, not a coroutine: a thousand sends
    started in one turn of the loop cost that turn one frame less each."""
    return _io_thread().submit(_bound(fn, *args, **kwargs), flush)


async def in_io_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on this process's I/O thread (short calls, in order)."""
    return await _io_thread().submit(_bound(fn, *args, **kwargs), None)


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a pool thread, for calls that wait a long time."""
    return await asyncio.wrap_future(_wait_pool().submit(_bound(fn, *args, **kwargs)))
