"""Running blocking client calls off the event loop, bridged back with ``asyncio.wrap_future``.

The broker clients we support (pika, boto3, kafka-python, kazoo, sqlite3, redis-py's sync
client) block, so an asyncio caller hands their calls to threads of this process: publishes go
to one I/O thread, in order, through that thread's one broker connection; calls that wait
for a long time (remote control gathering replies) go to a small pool, so they never hold up
a publish.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["in_io_thread", "in_thread"]

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executors: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_SIZES = {"celeriac-io": 1, "celeriac-wait": 4}


def _executor(name: str) -> ThreadPoolExecutor:
    pid = os.getpid()
    with _lock:
        found = _executors.get(name)
        if found is not None and found[0] == pid:
            return found[1]
        # None yet, or inherited by a forked child, which has no threads: make our own.
        executor = ThreadPoolExecutor(_SIZES[name], thread_name_prefix=name)
        _executors[name] = (pid, executor)
        return executor


async def _run(name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    # The caller's context travels along: a task sent from inside a running task keeps its
    # parent and root ids (``current_request``).
    context = contextvars.copy_context()
    future = _executor(name).submit(context.run, functools.partial(fn, *args, **kwargs))
    return await asyncio.wrap_future(future)


async def in_io_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on this process's I/O thread (publishes, short calls)."""
    return await _run("celeriac-io", fn, *args, **kwargs)


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a pool thread, for calls that wait a long time."""
    return await _run("celeriac-wait", fn, *args, **kwargs)
