"""A counter of finished sleep tasks, kept in Redis, that every system's sleep task bumps.

The sleep-task drains time each system to its last finished task, not to an empty queue (the
prefetched tasks still run after it). Each finished task INCRs ``key`` on ``BENCH_BACKEND``
(Redis db 10): the same round trip for every system. Imported by all four apps, in their own
venvs, so it needs nothing but redis-py.
"""

from __future__ import annotations

import os
from typing import Any

_URL = os.environ.get("BENCH_BACKEND") or "redis://127.0.0.1:6379/10"
_sync: Any = None
_async: dict[int, Any] = {}


def count_done(key: str) -> None:
    """One more finished task under ``key`` (thread pools; redis-py's client is thread-safe)."""
    global _sync
    if not key:
        return
    if _sync is None:
        import redis

        # Blocking pools: a task waits for a connection rather than failing (redis-py's
        # default pool raises past 100 connections, and there are more tasks in flight).
        pool = redis.BlockingConnectionPool.from_url(_URL, max_connections=32, timeout=None)
        _sync = redis.Redis(connection_pool=pool)
    _sync.incr(key)


async def acount_done(key: str) -> None:
    """The same from a task on an event loop, without blocking it (a client per loop)."""
    if not key:
        return
    import asyncio

    loop = id(asyncio.get_running_loop())
    if loop not in _async:
        import redis.asyncio

        pool = redis.asyncio.BlockingConnectionPool.from_url(_URL, max_connections=32, timeout=None)
        _async[loop] = redis.asyncio.Redis(connection_pool=pool)
    await _async[loop].incr(key)
