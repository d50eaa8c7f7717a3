"""The Celeriac app the benchmark's workers run (``celeriac worker -A bench.celeriac_app:app``).

Broker, backend and queue come from ``BENCH_BROKER``, ``BENCH_BACKEND`` and ``BENCH_QUEUE``.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.peers.done import acount_done, count_done
from celeriac import App

app = App(
    "bench",
    broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("BENCH_BACKEND") or None,
    task_default_queue=os.environ.get("BENCH_QUEUE", "bench"),
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH_MULTIPLIER", "4")),
)

#: Tasks running now and the most seen at once in this process (I/O concurrency figures).
IN_FLIGHT = {"now": 0, "peak": 0}


@app.task(name="bench.noop", ignore_result=True)
def noop(*args: object) -> None:
    return None


@app.task(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="bench.sleep_async", ignore_result=True)
async def sleep_async(seconds: float, done: str = "") -> None:
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    try:
        await asyncio.sleep(seconds)
    finally:
        IN_FLIGHT["now"] -= 1
    await acount_done(done)


@app.task(name="bench.sleep_sync", ignore_result=True)
def sleep_sync(seconds: float, done: str = "") -> None:
    IN_FLIGHT["now"] += 1  # races between threads only blur the peak by one or two
    IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    try:
        time.sleep(seconds)
    finally:
        IN_FLIGHT["now"] -= 1
    count_done(done)
