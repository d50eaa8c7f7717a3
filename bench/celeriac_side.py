"""Celeriac's client side of the benchmark, in a process of its own (like the peers' sides).

    python -m bench.celeriac_side MODE BROKER QUEUE COUNT   (MODE: publish, publish_window,
        publish_many, preload, roundtrip or io)
        [--payload BYTES] [--pool asyncio|threads] [--concurrency N] [--seconds S]
        [--task NAME --args JSON]   (preload: other tasks than bench.noop, e.g. sleep tasks)

Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson

#: The window of the publish_window mode (the README's example value).
WINDOW = 1000


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("broker")
    p.add_argument("queue")
    p.add_argument("count", type=int)
    p.add_argument("--payload", type=int, default=0)
    p.add_argument("--pool", default="asyncio")
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=0.1)
    p.add_argument("--task", default="bench.noop")
    p.add_argument("--args", default="")
    args = p.parse_args(argv)
    os.environ["BENCH_BROKER"], os.environ["BENCH_QUEUE"] = args.broker, args.queue
    from bench.celeriac_app import IN_FLIGHT, add, app, noop, sleep_async, sleep_sync

    out: dict[str, float] = {}
    payload = ("x" * args.payload,) if args.payload else ()
    if args.mode == "publish":
        noop.delay(*payload)  # connect and declare before timing
        t = time.perf_counter()
        for _ in range(args.count):
            noop.delay(*payload)
        app.flush()  # RabbitMQ's default window: the last confirms are timed too
        out["rate"] = args.count / (time.perf_counter() - t)
    elif args.mode == "publish_window":
        # The same plain delay loop with the transport option publish_window=WINDOW: delay()
        # returns once the message is written; acknowledgements are read in bulk (the flush at
        # the end, which waits for the last of them, is timed).
        app.conf = app.conf.replace(broker_transport_options={"publish_window": WINDOW})
        noop.delay(*payload)
        t = time.perf_counter()
        for _ in range(args.count):
            noop.delay(*payload)
        app.flush()
        out["rate"] = args.count / (time.perf_counter() - t)
    elif args.mode == "publish_many":
        # The batch API: each task message built and encoded, then 500 per publish_many (one
        # round trip, and on RabbitMQ one transaction, per batch).
        from celeriac.protocol import encode_task, new_task_message

        producer = app.producer()
        app.declare(args.queue)
        t = time.perf_counter()
        for i in range(0, args.count, 500):
            batch = [
                encode_task(new_task_message("bench.noop", payload, ignore_result=True))
                for _ in range(min(500, args.count - i))
            ]
            producer.publish_many(args.queue, batch)
        out["rate"] = args.count / (time.perf_counter() - t)
    elif args.mode == "preload":
        from celeriac.protocol import encode_task, new_task_message

        producer = app.producer()
        app.declare(args.queue)
        task_args = tuple(orjson.loads(args.args)) if args.args else payload
        wire = encode_task(new_task_message(args.task, task_args, ignore_result=True))
        t = time.perf_counter()
        for i in range(0, args.count, 500):
            n = min(500, args.count - i)
            # Tasks that run side by side (--args, sleep tasks): each with an id of its own.
            fresh = (new_task_message(args.task, task_args, ignore_result=True) for _ in range(n))
            batch = [encode_task(m) for m in fresh] if args.args else [wire] * n
            producer.publish_many(args.queue, batch)
        out["rate"] = args.count / (time.perf_counter() - t)
    elif args.mode == "roundtrip":
        from bench.common import quantiles

        add.delay(1, 1).get(timeout=30)
        times = []
        for _ in range(args.count):
            t = time.perf_counter()
            add.delay(1, 1).get(timeout=30)
            times.append(time.perf_counter() - t)
        out.update(quantiles(times))
    elif args.mode == "io":
        out.update(_io(args, app, sleep_async if args.pool == "asyncio" else sleep_sync, IN_FLIGHT))
    else:
        sys.exit(f"unknown mode {args.mode}")
    print(orjson.dumps(out).decode(), flush=True)


def _io(args: argparse.Namespace, app: object, task: object, in_flight: dict[str, int]) -> dict:
    """Preload sleeping tasks, run one worker in this process, time it to the last task."""
    from celeriac.protocol import encode_task, new_task_message
    from celeriac.worker import run_worker, stop_worker

    producer = app.producer()  # type: ignore[attr-defined]
    app.declare(args.queue)  # type: ignore[attr-defined]
    name = task.name  # type: ignore[attr-defined]
    wire = encode_task(new_task_message(name, (args.seconds,), ignore_result=True))
    for i in range(0, args.count, 500):
        producer.publish_many(args.queue, [wire] * min(500, args.count - i))
    app.conf = app.conf.replace(worker_prefetch_multiplier=1)  # type: ignore[attr-defined]
    worker = run_worker(app, pool=args.pool, concurrency=args.concurrency)  # type: ignore[arg-type]
    t = time.perf_counter()  # from ready (start-up is not counted) to the last task
    while worker.processed < args.count:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t
    stop_worker(worker)
    ceiling = args.concurrency / args.seconds
    rate = args.count / elapsed
    return {"rate": rate, "ceiling": ceiling, "fraction": rate / ceiling, "peak": in_flight["peak"]}


if __name__ == "__main__":
    main()
