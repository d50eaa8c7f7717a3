"""Round trips alone, Celeriac and the peers one after the other on Redis:

    python -m bench.roundtrips [--systems celeriac,celery,dramatiq,taskiq] [--count 500]

Each system's worker is started with the first pool of its drain (as the compare section does
for its round trips, ``suite.idle_and_roundtrips``), then ``count`` sequential
``delay().get()`` are timed; prints p50, p90 and p99 per system.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import suite, systems
from .common import REDIS_URL


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.roundtrips", description=__doc__)
    p.add_argument("--systems", default="celeriac,celery,dramatiq,taskiq")
    p.add_argument("--count", type=int, default=500)
    args = p.parse_args(argv)
    peers = (systems.Celeriac, systems.Celery, systems.Dramatiq, systems.Taskiq)
    known = {c.name: c for c in peers}
    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown --systems {unknown}; known: {', '.join(known)}")
    for name in names:
        system = known[name]()
        got = suite.idle_and_roundtrips(system, REDIS_URL, system.pools[0], args.count)
        print(
            f"{name}: p50 {got['p50'] * 1e3:.2f} ms, p90 {got['p90'] * 1e3:.2f} ms, "
            f"p99 {got['p99'] * 1e3:.2f} ms (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
