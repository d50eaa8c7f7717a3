"""``python -m bench.aio``: the async row. COUNT concurrent ``await add.adelay(i, 1)`` + ``await
result`` from one event loop (bench/aio_side.py) beside Taskiq's ``await add.kiq(i, 1)`` +
``wait_result()`` (bench/peers/taskiq_app.py, mode ``concurrent``), both with results in Redis,
on Redis and RabbitMQ, in the same run; the client loop's longest stall measured by a 1 ms
ticker (bench/peers/stall.py): while the callers wait, and separately the turn in which the
caller's ``gather`` starts them all; beside it the longest garbage collection, and the longest
stall of a bystander process (a loop with nothing to do) over the same time, which is what the
machine's load alone causes.

    python -m bench.aio [--only redis,amqp] [--count 1000] [--runs 3] [--out bench]
                        [--client-nice -5] [--gc-freeze] [--client-rt 10]
                        [--switch-interval 0.001]

``--client-nice`` runs every system's client (and its bystander) at that nice value;
``--gc-freeze`` has every client call ``gc.freeze()`` once warmed up; ``--client-rt`` gives
every system's client (and its bystander) that ``SCHED_FIFO`` priority (root only), which
takes the machine's share out of the stall: what is left is the client's own;
``--switch-interval`` sets every client's ``sys.setswitchinterval`` (how long a thread that
wants the GIL waits before the holder is asked to let it go: 5 ms by default, so a loop
sharing its process with a busy I/O thread can wait that long).

Writes aio_results.json and AIO.md into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import BACKEND_URL, REPO, broker_url, log
from .peers import env as peer_envs
from .systems import Celeriac, System, Taskiq, _json_line

#: Each run's figures whose median goes into the table.
_FIGURES = ("rate", "stall_ms", "waiting_ms", "waiting_no_gc_ms", "turn_cpu_ms", "startup_ms",
            "gc_ms", "floor_ms")  # fmt: skip


def _celeriac_client(url: str, queue: str, count: int) -> dict[str, float]:
    env = {**peer_envs.peer_env(), "BENCH_BROKER": url, "BENCH_QUEUE": queue,
           "BENCH_BACKEND": BACKEND_URL, "PYTHONPATH": str(REPO)}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "bench.aio_side", str(count)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=1800)  # fmt: skip
    return _json_line(proc, "celeriac aio")


def one_run(system: System, broker: str, count: int) -> dict[str, float]:
    """One client run against freshly started workers of ``system`` on ``broker``."""
    url = broker_url(broker)
    queue = f"bench.aio.{system.name}.{uuid.uuid4().hex[:6]}"
    pool = system.pools[-1]
    workers = [w.start() for w in system.workers(url, queue, pool, BACKEND_URL)]
    try:
        if isinstance(system, Celeriac):
            return _celeriac_client(url, queue, count)
        return system.client("concurrent", url, queue, count)
    finally:
        for worker in workers:
            worker.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="redis,amqp")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent))
    p.add_argument("--client-nice", type=int, default=None)
    p.add_argument("--gc-freeze", action="store_true")
    p.add_argument("--client-rt", type=int, default=None, metavar="PRIORITY")
    p.add_argument("--switch-interval", type=float, default=None, metavar="SECONDS")
    args = p.parse_args(argv)
    # Read by every system's client (bench.peers.stall.client_settings).
    if args.client_nice is not None:
        os.environ["BENCH_CLIENT_NICE"] = str(args.client_nice)
    if args.gc_freeze:
        os.environ["BENCH_GC_FREEZE"] = "1"
    if args.client_rt is not None:
        os.environ["BENCH_CLIENT_RT"] = str(args.client_rt)
    if args.switch_interval is not None:
        os.environ["BENCH_SWITCH_INTERVAL"] = str(args.switch_interval)
    systems: list[System] = [Celeriac(), Taskiq()]
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for broker in args.only.split(","):
        for system in systems:
            runs = []
            for n in range(args.runs):
                figures = one_run(system, broker, args.count)
                figures["load"] = os.getloadavg()[0]
                log(f"{broker} {system.label} run {n + 1}: {figures}")
                runs.append(figures)
            rows.append({
                "broker": broker, "system": system.label, "count": args.count,
                "worker": system.pools[-1].label,
                "rate_median": statistics.median(r["rate"] for r in runs),
                **{f"{k}_median": statistics.median(r[k] for r in runs) for k in _FIGURES},
                "waiting_ms_max": max(r["waiting_ms"] for r in runs),
                "runs": runs,
            })  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (out / "aio_results.json").write_text(json.dumps({"when": stamp, "rows": rows}, indent=1))
    command = " ".join(["python -m bench.aio", *(argv if argv is not None else sys.argv[1:])])
    loads = [r["load"] for row in rows for r in row["runs"]]
    lines = [
        "# Async row: concurrent await from one event loop",
        "",
        f"`{command}`, {stamp}, {time.monotonic() - started:.0f} s, load average "
        f"{min(loads):.1f}-{max(loads):.1f} (2 cores). Each run: {args.count} concurrent "
        "send + await result from one asyncio loop (results in Redis for both systems), "
        "fresh workers. Stalls from a 1 ms ticker on the client's loop: *waiting* is the "
        "longest while the callers wait (*GC out*: with the time garbage collections took "
        "taken out of each tick); *longest turn, CPU* is the most CPU time one turn of the "
        "loop took while waiting, collections out: the code on the loop, whatever the "
        "machine's load; *start-up* is the one turn in which `gather` starts "
        "every caller and runs each to its first `await` (the caller's own code plus the "
        "first step of each send); *GC* is the longest garbage collection (it stops every "
        "thread); *bystander* is the longest stall of an idle loop in another process at the "
        "same priority over the same time: the machine's share, which no client removes.",
        "",
        "| broker | system | worker | tasks/s | waiting, ms (median / max) | waiting, GC out, ms "
        "| longest turn, CPU ms | start-up, ms | GC, ms | bystander, ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['broker']} | {r['system']} | {r['worker']} | {r['rate_median']:,.0f} | "
            f"{r['waiting_ms_median']:.1f} / {r['waiting_ms_max']:.1f} | "
            f"{r['waiting_no_gc_ms_median']:.1f} | {r['turn_cpu_ms_median']:.1f} | "
            f"{r['startup_ms_median']:.1f} | "
            f"{r['gc_ms_median']:.1f} | "
            f"{r['floor_ms_median']:.1f} |"
        )
    lines += ["", "Medians of the runs; each run's figures are in aio_results.json."]
    (out / "AIO.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
