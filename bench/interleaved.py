"""One figure of ``python -m bench all`` for a few systems, taken in turns (a round of each
system, then the next round), so a busy machine weighs on all of them alike.

    python -m bench.interleaved publish|roundtrip [amqp|redis] [--runs 3] [--count N]
                                [--systems celeriac,celery,dramatiq]

publish: each system's plain loop of ``delay`` (Celery ``apply_async``, Dramatiq ``send``), as
the bench's publish row; roundtrip: sequential ``delay().get()`` against a worker of the
system's first drain pool, as the bench's round-trip rows. Prints each round and the medians.
``--broker-cpu`` adds, to each publish round, the CPU time the broker's process on this machine
(RabbitMQ's ``beam.smp``, Redis's ``redis-server``; from /proc) spent per message during it,
start-up and whatever else it served meanwhile included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
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
    p.add_argument("--broker-cpu", action="store_true")
    args = p.parse_args(argv)
    url = suite.URLS[args.broker]
    chosen = {name: SYSTEMS[name]() for name in args.systems.split(",")}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
    for run in range(args.runs):
        for name, system in chosen.items():
            if args.figure == "publish":
                count = args.count or 20_000
                before = _broker_cpu(args.broker) if args.broker_cpu else None
                out = {"rate": _publish(system, url, count)}
                if before is not None:
                    out["broker_us"] = (_broker_cpu(args.broker) - before) / count * 1e6
            else:
                out = suite.idle_and_roundtrips(system, url, system.pools[0], args.count or 500)
            rounds[name].append(out)
            print(run, name, _show(args.figure, out), flush=True)
    for name, outs in rounds.items():
        keys: tuple[str, ...] = ("p50", "p90", "p99")
        if args.figure == "publish":
            keys = ("rate", "broker_us") if args.broker_cpu else ("rate",)
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


#: The broker's process by broker (``pgrep -x`` names).
_BROKER_PROCESS = {"amqp": "beam.smp", "redis": "redis-server"}


def _broker_cpu(broker: str) -> float:
    """Seconds of CPU (user + system) the broker's process has used so far (the oldest of that
    name: a ``rabbitmqctl`` call runs a short-lived ``beam.smp`` of its own)."""
    found = subprocess.run(
        ["pgrep", "-o", "-x", _BROKER_PROCESS[broker]], capture_output=True, text=True, check=False
    ).stdout.split()
    if not found:
        raise SystemExit(f"--broker-cpu: no {_BROKER_PROCESS[broker]} process on this machine")
    with open(f"/proc/{found[0]}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _show(figure: str, out: dict[str, float]) -> str:
    if figure == "publish":
        broker = f", broker {out['broker_us']:.0f} us/message" if "broker_us" in out else ""
        return f"{out['rate']:,.0f}/s{broker}"
    return " ".join(f"{k} {out[k] * 1000:.2f} ms" for k in ("p50", "p90", "p99"))


if __name__ == "__main__":
    main()
