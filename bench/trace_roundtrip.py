"""Where one ``delay(...).get()`` round trip spends its time, stage by stage.

    python -m bench.trace_roundtrip [amqp|redis] [COUNT] [--pool threads|solo] [--window N]

A worker runs from its command line (``bench.celeriac_app``, as the benchmark's) with hooks
that note the time of each stage of each task; this process sends COUNT sequential
``add.delay(1, 1).get()`` and notes its own. Both read ``time.monotonic()``, one clock for
every process of the machine. Prints the median and p90 of each stage, in microseconds:

- publish: ``delay()`` until it returned (building, encoding, writing; with RabbitMQ's
  default window no confirm is waited for);
- to worker: until the worker's transport had the message (broker, wake-up, frame decode);
- admit: until the pool was handed the job (the worker's per-message checks, decode);
- hand-off: until a pool thread started it;
- run+store: until the result was stored (the call, the result record, the backend's write);
- notify+wake: until ``get()`` returned (the backend's notification, the caller's wake-up,
  reading and decoding the result).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .common import BACKEND_URL, REPO

#: Installed in the worker process before the CLI runs: each hook appends (stage, id, time).
_HOOKS = r"""
import atexit, json, os, time
from celeriac.transports.amqp import consumer as _consumer
from celeriac.worker import threads as _threads
from celeriac.backends import redis as _redis

_log = []
_now = time.monotonic

_on_message = _consumer.AmqpConsumer._on_message
def _traced_on_message(self, ch, method, props, body):
    _on_message(self, ch, method, props, body)
    d = self.buffer[-1]
    if d.message is not None:
        _log.append(("fetched", d.message.headers.get("id"), _now()))
_consumer.AmqpConsumer._on_message = _traced_on_message

_submit = _threads.ThreadPool.submit
def _traced_submit(self, job, on_done):
    _log.append(("submitted", job.id, _now()))
    return _submit(self, job, on_done)
_threads.ThreadPool.submit = _traced_submit

_execute = _threads.execute
def _traced_execute(app, msg, *args, **kwargs):
    _log.append(("started", msg.id, _now()))
    return _execute(app, msg, *args, **kwargs)
_threads.execute = _traced_execute

_store = _redis.RedisBackend.store
def _traced_store(self, record):
    _store(self, record)
    _log.append(("stored", record.task_id, _now()))
_redis.RedisBackend.store = _traced_store

@atexit.register
def _dump():
    with open(os.environ["TRACE_FILE"], "w") as f:
        json.dump(_log, f)

from celeriac.cli import main
main()
"""

STAGES = (
    ("publish", "sent", "published"),
    ("to worker", "published", "fetched"),
    ("admit", "fetched", "submitted"),
    ("hand-off", "submitted", "started"),
    ("run+store", "started", "stored"),
    ("notify+wake", "stored", "got"),
    ("total", "sent", "got"),
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("broker", nargs="?", default="amqp", choices=("amqp", "redis"))
    p.add_argument("count", nargs="?", type=int, default=300)
    p.add_argument("--pool", default="threads")
    p.add_argument("--window", type=int, help="the client's publish_window (0: each confirmed)")
    args = p.parse_args(argv)
    from .suite import URLS

    url = URLS[args.broker]
    queue = f"bench-trace-{uuid.uuid4().hex[:8]}"
    os.environ.update(BENCH_BROKER=url, BENCH_QUEUE=queue, BENCH_BACKEND=BACKEND_URL)
    trace = Path(tempfile.mkstemp(suffix=".json")[1])
    env = {**os.environ, "TRACE_FILE": str(trace), "PYTHONPATH": str(REPO)}
    argv_ = [sys.executable, "-c", _HOOKS, "worker", "-A", "bench.celeriac_app:app"]
    argv_ += ["-Q", queue, "-l", "warning", "-P", args.pool, "-c", "8"]
    worker = subprocess.Popen(argv_, env=env, cwd=REPO)
    from bench.celeriac_app import add, app

    if args.window is not None:
        app.conf = app.conf.replace(broker_transport_options={"publish_window": args.window})
    marks: dict[str, dict[str, float]] = {}
    try:
        add.delay(1, 1).get(timeout=60)  # the worker is up
        for _ in range(args.count):
            t0 = time.monotonic()
            result = add.delay(1, 1)
            t1 = time.monotonic()
            result.get(timeout=30)
            marks[result.id] = {"sent": t0, "published": t1, "got": time.monotonic()}
    finally:
        worker.terminate()
        worker.wait(60)
        app.producer().purge(queue)
    for stage, task_id, when in json.loads(trace.read_text()):
        if task_id in marks:
            marks[task_id][stage] = when
    trace.unlink()
    window = "" if args.window is None else f", client publish_window={args.window}"
    print(f"{args.broker}, {args.count} round trips, pool {args.pool}{window} (microseconds)")
    print(f"{'stage':<12} {'p50':>8} {'p90':>8}")
    for name, start, end in STAGES:
        spans = [(m[end] - m[start]) * 1e6 for m in marks.values() if start in m and end in m]
        if len(spans) < 2:
            print(f"{name:<12} {'-':>8} {'-':>8}")
            continue
        q = statistics.quantiles(spans, n=10)
        print(f"{name:<12} {statistics.median(spans):>8.0f} {q[8]:>8.0f}")


if __name__ == "__main__":
    main()
