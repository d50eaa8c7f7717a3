"""CPU time a worker spends per no-op task between fetch and settle (issue 23), in this process.

    python -m bench.worker_cpu [URL] [--count 20000] [--pool threads] [--concurrency 8]
                               [--prefetch-multiplier 16] [--profile] [--rusage] [--events]

``COUNT`` no-op tasks (``ignore_result``, no backend) are published first; then a worker
(``run_worker``) drains them, and ``time.process_time()`` (user + system, every thread of
the process) is taken from the worker's first fetch to the last settle. The default URL,
``memory://``, has no broker I/O at all: what is left is decode, the admission checks, the
pool's hand-off, ``execute`` and settling. ``--profile``: cProfile of the loop's thread and
the pool's threads together, top functions by own time. To compare two trees, run it under
each tree's interpreter, in turns.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import threading
import time

from celeriac import App
from celeriac.worker import core

QUEUE = "bench-worker-cpu"


def measure(
    url: str,
    count: int,
    pool: str = "threads",
    concurrency: int = 8,
    multiplier: int = 16,
    profile: bool = False,
    split: bool = False,
    events: bool = False,
) -> tuple[float, float]:
    """(microseconds of CPU per task, tasks per second of wall time) for a drain of ``count``."""
    app = App(
        "workercpu",
        broker=url,
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=multiplier,
        worker_hijack_root_logger=False,
        worker_send_task_events=events,
    )

    @app.task(name="bench.worker_cpu.noop", ignore_result=True)
    def noop(*args: object) -> None:
        return None

    producer = app.producer()
    producer.purge(QUEUE)
    for start in range(0, count, 1000):
        for i in range(start, min(start + 1000, count)):
            noop.delay(i)
    app.flush()

    profilers: list[cProfile.Profile] = []
    if profile:
        # Every thread the worker starts (the loop, the pool's) gets its own profiler.
        def start_profiler(*_: object) -> None:
            prof = cProfile.Profile()
            profilers.append(prof)
            sys.setprofile(None)  # this thread's hook only: the profiler's own follows
            prof.enable()

        threading.setprofile(start_profiler)
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.process_time()
    wall = time.perf_counter()
    worker = core.run_worker(app, pool=pool, concurrency=concurrency)
    while worker.processed < count:
        time.sleep(0.005)  # a poll of a counter: a few hundred wake-ups in all
    spent = time.process_time() - began
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    threading.setprofile(None)
    core.stop_worker(worker)
    for prof in profilers:
        prof.disable()
    if profilers:
        stats = pstats.Stats(profilers[0])
        for prof in profilers[1:]:
            stats.add(prof)
        stats.sort_stats("tottime").print_stats(45)
    producer.purge(QUEUE)
    app.close()
    if split:
        print(
            f"user {(after.ru_utime - before.ru_utime) / count * 1e6:.1f} us, "
            f"sys {(after.ru_stime - before.ru_stime) / count * 1e6:.1f} us, "
            f"context switches {(after.ru_nvcsw - before.ru_nvcsw) / count:.2f} voluntary, "
            f"{(after.ru_nivcsw - before.ru_nivcsw) / count:.2f} involuntary per task"
        )
    return spent / count * 1e6, count / wall


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.worker_cpu")
    p.add_argument("url", nargs="?", default="memory://bench-worker-cpu")
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--pool", default="threads")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--prefetch-multiplier", type=int, default=16)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--rusage", action="store_true", help="user, sys and context switches")
    p.add_argument("--events", action="store_true", help="with task events (-E)")
    args = p.parse_args(argv)
    cpu, rate = measure(
        args.url,
        args.count,
        args.pool,
        args.concurrency,
        args.prefetch_multiplier,
        args.profile,
        args.rusage,
        args.events,
    )
    print(f"{args.url.split(':')[0]} {args.pool}: {cpu:.1f} us CPU/task, {rate:,.0f} tasks/s")


if __name__ == "__main__":
    main()
