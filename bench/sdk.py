"""Celeriac against real Celery 5.7 on the same broker, in one run: publish rate of no-op
tasks, drain rate of preloaded no-op tasks, and sequential round trips ``delay(...).get()``.

    python -m bench.sdk [--count 20000] [--roundtrips 500] [--brokers redis,amqp]

Drain is timed the same way for both: the queue length is sampled once the worker is ready
and again until the queue is empty (worker start-up is not counted). Both use a thread pool of
8 and the same Redis result backend for round trips. Needs ``scripts/services up redis rabbitmq``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from celeriac import App
from celeriac.protocol import encode_task, new_task_message
from celeriac.transports import QueueSpec, Transport, open_transport
from celeriac.worker import run_worker, stop_worker
from interop import celery_env

REDIS_URL = os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("CELERIAC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BACKEND = REDIS_URL.rsplit("/", 1)[0] + "/4"
HERE = Path(__file__).resolve().parent


def _app(broker: str, queue: str) -> App:
    app = App("bench", broker=broker, backend=BACKEND, task_default_queue=queue)

    @app.task(name="bench.noop", ignore_result=True)
    def noop() -> None:
        return None

    @app.task(name="bench.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


def _drain_rate(transport: Transport, queue: str, start_worker: Callable[[], object]) -> float:
    """Messages per second from the first length sample after start to an empty queue."""
    start_worker()
    first = transport.queue_length(queue)
    t0 = time.perf_counter()
    while transport.queue_length(queue) > 0:
        time.sleep(0.01)  # sampling the broker's queue length
    return first / max(time.perf_counter() - t0, 1e-9)


def _preload(transport: Transport, queue: str, count: int) -> None:
    wire = encode_task(new_task_message("bench.noop", (), ignore_result=True))
    for i in range(0, count, 500):
        transport.publish_many(queue, [wire] * min(500, count - i))


def celeriac_figures(broker: str, count: int, roundtrips: int) -> dict[str, float]:
    queue = f"bench.celeriac.{uuid.uuid4().hex[:6]}"
    app = _app(broker, queue)
    noop, add = app.tasks["bench.noop"], app.tasks["bench.add"]
    noop.delay()  # connect and declare before timing
    start = time.perf_counter()
    for _ in range(count):
        noop.delay()
    figures = {"publish": count / (time.perf_counter() - start)}
    transport = open_transport(broker)
    transport.declare_queue(QueueSpec(queue))
    transport.purge(queue)
    _preload(transport, queue, count)
    holder: list[object] = []
    figures["drain"] = _drain_rate(
        transport, queue, lambda: holder.append(run_worker(app, concurrency=8))
    )
    times = []
    add.delay(1, 1).get(timeout=30)
    for _ in range(roundtrips):
        t = time.perf_counter()
        add.delay(1, 1).get(timeout=30)
        times.append(time.perf_counter() - t)
    q = statistics.quantiles(times, n=100)
    figures.update(p50=q[49], p90=q[89], p99=q[98])
    stop_worker(holder[0])  # type: ignore[arg-type]
    transport.purge(queue)
    transport.close()
    app.close()
    return figures


def celery_figures(broker: str, count: int, roundtrips: int) -> dict[str, float]:
    queue = f"bench.celery.{uuid.uuid4().hex[:6]}"
    out = celery_env.run_script(
        HERE / "celery_side.py", "publish", broker, BACKEND, queue, str(count), timeout=900
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    transport = open_transport(broker)
    transport.declare_queue(QueueSpec(queue))
    transport.purge(queue)
    _preload(transport, queue, count)
    worker = celery_env.CeleryWorker(
        HERE,
        "celery_bench_app",
        broker_url=broker,
        backend_url=BACKEND,
        queues=[queue],
        ready_timeout=60.0,
        extra_args=["-P", "threads", "-c", "8"],
    )
    try:
        figures["drain"] = _drain_rate(transport, queue, worker.start)
        out = celery_env.run_script(
            HERE / "celery_side.py",
            "roundtrip",
            broker,
            BACKEND,
            queue,
            str(roundtrips),
            timeout=900,
        ).stdout
        figures.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        worker.stop()
        transport.purge(queue)
        transport.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--roundtrips", type=int, default=500)
    parser.add_argument("--brokers", default="redis,amqp")
    args = parser.parse_args(argv)
    urls = {"redis": REDIS_URL, "amqp": AMQP_URL}
    table = Table(
        title=f"Celeriac vs Celery 5.7: {args.count:,} no-op tasks, {args.roundtrips} round trips"
    )
    for column in ("broker", "figure", "Celeriac", "Celery", "Celeriac / Celery"):
        table.add_column(column, justify="left" if column in ("broker", "figure") else "right")
    for name in args.brokers.split(","):
        ours = celeriac_figures(urls[name], args.count, args.roundtrips)
        theirs = celery_figures(urls[name], args.count, args.roundtrips)
        for key, label, unit in (
            ("publish", "publish", "/s"),
            ("drain", "drain (threads x8)", "/s"),
            ("p50", "round trip p50", "ms"),
            ("p90", "round trip p90", "ms"),
            ("p99", "round trip p99", "ms"),
        ):
            a, b = ours[key], theirs[key]
            if unit == "ms":
                table.add_row(
                    name, label, f"{a * 1000:.2f} ms", f"{b * 1000:.2f} ms", f"{a / b:.2f}x"
                )
            else:
                table.add_row(name, label, f"{a:,.0f}/s", f"{b:,.0f}/s", f"{a / b:.2f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
