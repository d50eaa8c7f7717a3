"""Worker memory on every transport: RSS of the worker's process tree, idle and loaded.

    python -m bench.memory [--only memory,sqlite,redis,amqp,sqs,kafka,zookeeper]
                           [--tasks 20000] [--pool threads8|prefork2] [--celery]

Each worker is started from its command line (``celeriac worker -A bench.celeriac_app:app``,
as ``python -m bench all`` starts it), answers one task, and after a second its tree's RSS is
read (idle, ``/proc/<pid>/statm``). Then ``--tasks`` no-op tasks are published while it runs,
and the peak RSS until the queue is empty is the loaded figure. The memory transport has no
server, so that row runs the same worker in one process with its publisher (``--inproc``),
which keeps at most ~1,000 tasks waiting.
``--celery`` adds Celery 5.7 with the same pool on Redis and RabbitMQ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from .common import AMQP_URL, KAFKA_URL, REDIS_URL, SQS_URL, ZOOKEEPER_URL, Probe, Worker, log
from .common import rss as proc_rss
from .systems import Celeriac, Celery, Pool

MB = 1024 * 1024
POOLS = {
    "threads8": (Pool("1 process x threads 8", 1, ("-P", "threads", "-c", "8")),) * 2,
    "prefork2": (Pool("1 process x prefork 2", 1, ("-P", "prefork", "-c", "2")),) * 2,
}


def _wait_empty(probe: Probe, queue: str, worker: Worker, timeout: float = 300) -> int:
    """Wait for an empty queue while sampling the worker's RSS; the peak seen."""
    deadline = time.monotonic() + timeout
    peak = worker.rss()
    while probe.length(queue) > 0:
        worker.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{queue}: not drained in {timeout:.0f} s\n{worker.tail()}")
        peak = max(peak, worker.rss())
        time.sleep(0.05)
    return max(peak, worker.rss())


def measure(system: Celeriac | Celery, url: str, pool: Pool, tasks: int) -> dict[str, float]:
    """Idle and loaded RSS of one worker (all processes of its tree) on ``url``."""
    queue = f"bench-mem-{uuid.uuid4().hex[:8]}"
    [worker] = system.workers(url, queue, pool)
    probe = Probe(url)
    try:
        Celeriac().preload(url, queue, 1)
        worker.start()
        _wait_empty(probe, queue, worker)
        time.sleep(1.0)
        idle, processes = worker.rss(), worker.processes()
        publisher = subprocess.Popen(  # published while the worker runs: its peak is "loaded"
            [sys.executable, "-m", "bench.celeriac_side", "preload", url, queue, str(tasks)],
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            stdout=subprocess.DEVNULL,
        )
        peak = worker.rss()
        while publisher.poll() is None:
            peak = max(peak, worker.rss())
            time.sleep(0.05)
        peak = max(peak, _wait_empty(probe, queue, worker))
        return {"idle": idle / MB, "loaded": peak / MB, "processes": processes}
    finally:
        worker.stop()
        probe.delete(queue)
        probe.close()


def inproc(tasks: int, concurrency: int) -> None:
    """The memory transport's row: a worker and its publisher in this process."""
    os.environ["BENCH_BROKER"], os.environ["BENCH_QUEUE"] = "memory://bench-mem", "bench"
    from bench.celeriac_app import app, noop
    from celeriac.cli import main  # noqa: F401  (the worker's command line imports it too)
    from celeriac.worker import run_worker, stop_worker

    worker = run_worker(app, pool="threads", concurrency=concurrency)
    noop.delay()
    while worker.processed < 1:
        time.sleep(0.01)
    time.sleep(1.0)
    idle = proc_rss(os.getpid())
    peak = idle
    for i in range(tasks):
        noop.delay()
        if i % 500 == 0:
            peak = max(peak, proc_rss(os.getpid()))
            # The queue lives in this process too: keep it near the worker's prefetch, or the
            # row would count the waiting messages, not the worker.
            while worker.processed < i - 500:
                time.sleep(0.005)
    while worker.processed < tasks + 1:
        peak = max(peak, proc_rss(os.getpid()))
        time.sleep(0.05)
    stop_worker(worker)
    print(json.dumps({"idle": idle / MB, "loaded": peak / MB, "processes": 1}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="memory,sqlite,redis,amqp,sqs,kafka,zookeeper")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--pool", choices=sorted(POOLS), default="threads8")
    parser.add_argument("--celery", action="store_true", help="Celery 5.7 on Redis and RabbitMQ")
    parser.add_argument("--inproc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inproc:
        inproc(args.tasks, 8)
        return
    pool = POOLS[args.pool][0]
    celery_pool = Pool(pool.label, 1, pool.args)
    rows: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = {
            "sqlite": f"sqlite:///{tmp}/bench.db",
            "redis": REDIS_URL,
            "amqp": AMQP_URL,
            "sqs": SQS_URL,
            "kafka": KAFKA_URL,
            "zookeeper": f"{ZOOKEEPER_URL}/bench-{uuid.uuid4().hex[:8]}",
        }
        for name in args.only.split(","):
            log(f"memory: {name}")
            if name == "memory":
                out = subprocess.run(
                    [sys.executable, "-m", "bench.memory", "--inproc", "--tasks", str(args.tasks)],
                    env={**os.environ, "PYTHONPATH": os.getcwd()},
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                rows.append(("Celeriac", name, json.loads(out.splitlines()[-1])))
                continue
            rows.append(("Celeriac", name, measure(Celeriac(), urls[name], pool, args.tasks)))
            if args.celery and name in ("redis", "amqp"):
                celery = measure(Celery(), urls[name], celery_pool, args.tasks)
                rows.append(("Celery 5.7", name, celery))
    print("\n| system | transport | pool | processes | idle | loaded | loaded per process |")
    print("|---|---|---|---:|---:|---:|---:|")
    for system, name, r in rows:
        label = "in-process" if name == "memory" else pool.label
        print(
            f"| {system} | {name} | {label} | {r['processes']:.0f} | {r['idle']:.1f} MB "
            f"| {r['loaded']:.1f} MB | {r['loaded'] / max(r['processes'], 1):.1f} MB |"
        )


if __name__ == "__main__":
    main()
