"""CPU time of one plain ``delay()`` of a no-op task (issue 23), in this process.

    python -m bench.delay_cpu URL [--count 20000] [--profile]

``time.process_time()`` (user + system) around ``count`` calls and the final ``app.flush()``,
after 500 calls of warm-up; ``--profile`` prints cProfile's top functions by own time. To
compare two trees, run it under each tree's interpreter (or ``PYTHONPATH`` pointing at an
exported tree's ``protocol``, ``transports`` and ``sdk``), in turns."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from celeriac import App

QUEUE = "bench-delay-cpu"


def measure(url: str, count: int, profile: bool = False) -> float:
    """Microseconds of CPU per ``delay()`` against ``url``."""
    app = App("delaycpu", broker=url, task_default_queue=QUEUE)

    @app.task(name="bench.delay_cpu.noop", ignore_result=True)
    def noop(*args: object) -> None:
        return None

    for i in range(500):
        noop.delay(i)
    app.flush()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    start = time.process_time()
    for i in range(count):
        noop.delay(i)
    app.flush()
    spent = time.process_time() - start
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    app.producer().purge(QUEUE)  # the brokers are shared: leave nothing behind
    app.close()
    return spent / count * 1e6


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.delay_cpu")
    p.add_argument("url")
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    print(f"{args.url.split(':')[0]}: {measure(args.url, args.count, args.profile):.1f} us/delay")


if __name__ == "__main__":
    main()
