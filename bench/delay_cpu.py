"""CPU time of one plain ``delay()`` of a no-op task (issue 23), in this process.

    python -m bench.delay_cpu URL [--count 20000] [--profile] [--rate] [-o NAME=VALUE]

``time.process_time()`` (user + system) around ``count`` calls and the final ``app.flush()``,
after 500 calls of warm-up; ``--profile`` prints cProfile's top functions by own time;
``--rate`` adds the loop's rate and the CPU the broker's process on this machine spent per
call meanwhile; ``-o coalesce_writes=false`` passes a transport option. To
compare two trees, run it under each tree's interpreter (or ``PYTHONPATH`` pointing at an
exported tree's ``protocol``, ``transports`` and ``sdk``), in turns."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from celeriac import App

from . import interleaved

QUEUE = "bench-delay-cpu"


def measure(
    url: str, count: int, profile: bool = False, options: dict[str, str] | None = None
) -> dict[str, float]:
    """Microseconds of CPU per ``delay()`` against ``url`` (``cpu``), the loop's rate
    (``rate``) and the broker's CPU per call (``broker``, when its process is on this machine)."""
    app = App(
        "delaycpu", broker=url, task_default_queue=QUEUE, broker_transport_options=options or {}
    )

    @app.task(name="bench.delay_cpu.noop", ignore_result=True)
    def noop(*args: object) -> None:
        return None

    for i in range(500):
        noop.delay(i)
    app.flush()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    broker = _broker_cpu(url)
    wall, start = time.perf_counter(), time.process_time()
    for i in range(count):
        noop.delay(i)
    app.flush()
    spent, wall = time.process_time() - start, time.perf_counter() - wall
    if broker is not None:
        broker = (_broker_cpu(url) or 0.0) - broker
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    app.producer().purge(QUEUE)  # the brokers are shared: leave nothing behind
    app.close()
    out = {"cpu": spent / count * 1e6, "rate": count / wall}
    if broker is not None:
        out["broker"] = broker / count * 1e6
    return out


def _broker_cpu(url: str) -> float | None:
    scheme = url.split(":", 1)[0]
    broker = {"amqp": "amqp", "amqps": "amqp", "redis": "redis"}.get(scheme)
    if broker is None:
        return None
    try:
        return interleaved._broker_cpu(broker)
    except SystemExit:  # the broker runs elsewhere
        return None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.delay_cpu")
    p.add_argument("url")
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--rate", action="store_true")
    p.add_argument("-o", "--option", action="append", default=[], metavar="NAME=VALUE")
    args = p.parse_args(argv)
    options = dict(o.split("=", 1) for o in args.option)
    out = measure(args.url, args.count, args.profile, options)
    line = f"{args.url.split(':')[0]}: {out['cpu']:.1f} us/delay"
    if args.rate:
        line += f", {out['rate']:,.0f}/s"
        if "broker" in out:
            line += f", broker {out['broker']:.1f} us/delay"
    print(line)


if __name__ == "__main__":
    main()
