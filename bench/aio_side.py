"""Celeriac's asyncio client for the async row of the benchmark (bench/aio.py), in a process of
its own: ``python -m bench.aio_side COUNT`` with ``BENCH_BROKER``/``BENCH_BACKEND``/``BENCH_QUEUE``
set. COUNT concurrent ``await add.adelay(i, 1)`` + ``await result.aget()`` from one event loop,
a ticker measuring the loop's longest stall throughout. Prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.peers.stall import StallMeter, client_settings


async def run(count: int) -> dict[str, float]:
    from bench.celeriac_app import add, app

    await app.aopen()
    try:
        assert await (await add.adelay(1, 1)).aget(timeout=30) == 2  # connected, worker up
        client_settings()

        async def one(i: int) -> int:
            result = await add.adelay(i, 1)
            value: int = await result.aget(timeout=300)
            return value

        async with StallMeter(bystander=True) as meter:
            meter.mark()
            started = time.perf_counter()
            values = await asyncio.gather(*(one(i) for i in range(count)))
            elapsed = time.perf_counter() - started
        if values != [i + 1 for i in range(count)]:
            raise AssertionError("wrong results")
    finally:
        await app.aclose()
    return {"rate": count / elapsed, "seconds": elapsed, **meter.figures()}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(int(sys.argv[1])))), flush=True)
