"""Taskiq's side of the benchmark (runs in the Taskiq venv, see bench/peers/env.py).

Worker: ``taskiq worker bench.peers.taskiq_app:broker --workers N``; client:
``python -m bench.peers.taskiq_app publish|roundtrip|concurrent COUNT [PAYLOAD_BYTES]`` or
``... sleep COUNT SECONDS DONE_KEY`` (preloads sleep tasks, bench/peers/done.py). Redis uses
taskiq-redis's ListQueueBroker, RabbitMQ taskiq-aio-pika (a classic queue named like ours);
results (Redis) from ``BENCH_BACKEND``.
"""

import asyncio
import json
import os
import statistics
import sys
import time

from bench.peers.done import acount_done

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "taskiq")
BACKEND = os.environ.get("BENCH_BACKEND")

result_backend = None
if BACKEND:
    from taskiq_redis import RedisAsyncResultBackend

    result_backend = RedisAsyncResultBackend(redis_url=BACKEND, result_ex_time=600)
if BROKER.startswith("redis"):
    from taskiq_redis import ListQueueBroker

    broker = ListQueueBroker(url=BROKER, queue_name=QUEUE)
else:
    from taskiq_aio_pika import AioPikaBroker
    from taskiq_aio_pika.exchange import Exchange
    from taskiq_aio_pika.queue import Queue, QueueType

    url = BROKER[:-1] if BROKER.endswith("//") else BROKER
    broker = AioPikaBroker(
        url=url,
        exchange=Exchange(name=QUEUE),
        task_queues=[Queue(name=QUEUE, type=QueueType.CLASSIC)],
        qos=int(os.environ.get("BENCH_QOS", "100")),
    )
if result_backend is not None:
    broker = broker.with_result_backend(result_backend)


@broker.task(task_name="bench_noop")
async def noop(*args):
    return None


@broker.task(task_name="bench_add")
async def add(x, y):
    return x + y


@broker.task(task_name="bench_sleep")
async def sleep(seconds: float, done: str = "") -> None:
    await asyncio.sleep(seconds)
    await acount_done(done)


async def concurrent(count):
    """COUNT concurrent kiq() + wait_result() from one loop, its longest stall measured
    (the async row, bench/aio.py)."""
    from bench.peers.stall import StallMeter, client_settings

    await (await add.kiq(1, 1)).wait_result(timeout=30, check_interval=0.005)
    client_settings()

    async def one(i):
        task = await add.kiq(i, 1)
        return (await task.wait_result(timeout=300, check_interval=0.005)).return_value

    async with StallMeter(bystander=True) as meter:
        meter.mark()
        t = time.perf_counter()
        values = await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - t
    if values != [i + 1 for i in range(count)]:
        raise AssertionError("wrong results")
    return {"rate": count / elapsed, "seconds": elapsed, **meter.figures()}


async def run(mode, count, args):
    await broker.startup()
    out = {}
    try:
        if mode == "publish":
            await noop.kiq(*args)
            t = time.perf_counter()
            for _ in range(count):
                await noop.kiq(*args)
            out["rate"] = count / (time.perf_counter() - t)
        elif mode == "sleep":
            for _ in range(count):
                await sleep.kiq(*args)
        elif mode == "roundtrip":
            await (await add.kiq(1, 1)).wait_result(timeout=30, check_interval=0.005)
            times = []
            for _ in range(count):
                t = time.perf_counter()
                await (await add.kiq(1, 1)).wait_result(timeout=30, check_interval=0.005)
                times.append(time.perf_counter() - t)
            q = statistics.quantiles(times, n=100, method="inclusive")
            out = {"p50": q[49], "p90": q[89], "p99": q[98]}
        elif mode == "concurrent":
            out = await concurrent(count)
    finally:
        await broker.shutdown()
    return out


def main():
    mode, count = sys.argv[1], int(sys.argv[2])
    args: tuple[object, ...]
    if mode == "sleep":
        args = (float(sys.argv[3]), sys.argv[4])
    else:
        args = ("x" * int(sys.argv[3]),) if len(sys.argv) > 3 and int(sys.argv[3]) else ()
    print(json.dumps(asyncio.run(run(mode, count, args))), flush=True)


if __name__ == "__main__":
    main()
