"""One figure of ``python -m bench all`` for a few systems, taken in turns (a round of each
system, then the next round), so a busy machine weighs on all of them alike.

    python -m bench.interleaved publish|roundtrip [amqp|redis] [--runs 3] [--count N]
                                [--systems celeriac,celery,dramatiq]

publish: each system's plain loop of ``delay`` (Celery ``apply_async``, Dramatiq ``send``), as
the bench's publish row; roundtrip: sequential ``delay().get()`` against a worker of the
system's first drain pool, as the bench's round-trip rows. Prints each round and the medians.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from . import suite, systems
from .common import Probe

SYSTEMS = {"celeriac": systems.Celeriac, "celery": systems.Celery, "dramatiq": systems.Dramatiq}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("figure", choices=("publish", "roundtrip"))
    p.add_argument("broker", nargs="?", default="amqp", choices=("amqp", "redis"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--count", type=int)
    p.add_argument("--systems", default="celeriac,celery,dramatiq")
    args = p.parse_args(argv)
    url = suite.URLS[args.broker]
    chosen = {name: SYSTEMS[name]() for name in args.systems.split(",")}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
    for run in range(args.runs):
        for name, system in chosen.items():
            if args.figure == "publish":
                out = {"rate": _publish(system, url, args.count or 20_000)}
            else:
                out = suite.idle_and_roundtrips(system, url, system.pools[0], args.count or 500)
            rounds[name].append(out)
            print(run, name, _show(args.figure, out), flush=True)
    for name, outs in rounds.items():
        keys = ("rate",) if args.figure == "publish" else ("p50", "p90", "p99")
        medians = {k: statistics.median(o[k] for o in outs) for k in keys}
        print(name, "median", _show(args.figure, medians))


def _publish(system: Any, url: str, count: int) -> float:
    queue = suite._queue(system.name)
    probe = Probe(url)
    try:
        return float(system.publish(url, queue, count))
    finally:
        probe.delete(*system.keys(url, queue))
        probe.close()


def _show(figure: str, out: dict[str, float]) -> str:
    if figure == "publish":
        return f"{out['rate']:,.0f}/s"
    return " ".join(f"{k} {out[k] * 1000:.2f} ms" for k in ("p50", "p90", "p99"))


if __name__ == "__main__":
    main()
