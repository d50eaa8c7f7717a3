"""python -m bench.rttrace [--count 500] [--pool threads] [--concurrency 8]

Runs one worker and one client on Redis (db 9, results in db 10), times ``count`` sequential
``add.delay(1, 1).get()`` with timestamps at each step, and prints per step the median and p90
of the time since the previous step and since ``delay()`` started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.common import BACKEND_URL, REDIS_URL, REPO

HOOKS = Path(__file__).resolve().parent / "hooks"

CLIENT = """
import builtins, sys
from bench.celeriac_app import add
for _ in range(20):
    add.delay(1, 1).get(timeout=30)
mark = builtins._rttrace_mark
for _ in range(int(sys.argv[1])):
    mark("client: delay() starts")
    result = add.delay(1, 1)
    mark("client: delay() returned")
    result.get(timeout=30)
    mark("client: has the result")
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rttrace", description=__doc__)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--pool", default="threads")
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args(argv)
    queue = f"bench.rttrace.{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "events")
        env = {**os.environ, "BENCH_BROKER": REDIS_URL, "BENCH_BACKEND": BACKEND_URL,
               "BENCH_QUEUE": queue, "RTTRACE": prefix,
               "PYTHONPATH": os.pathsep.join([str(REPO), str(HOOKS)])}  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-c", "from celeriac.cli import main; main()", "worker", "-A",
             "bench.celeriac_app:app", "-Q", queue, "-l", "warning", "-P", args.pool,
             "-c", str(args.concurrency)],
            env={**env, "RTTRACE_ROLE": "worker"}, cwd=REPO,
        )  # fmt: skip
        try:
            client_env = {**env, "RTTRACE_ROLE": "client"}
            client = [sys.executable, "-c", CLIENT, str(args.count)]
            subprocess.run(client, check=True, env=client_env, cwd=REPO, timeout=600)
        finally:
            worker.terminate()
            worker.wait(30)
        events = []
        for path in Path(tmp).glob("events.*"):
            for line in path.read_text().splitlines():
                t, name = line.split(" ", 1)
                events.append((int(t), name))
    events.sort()
    if os.environ.get("RTTRACE_DUMP"):  # every timestamp, for a closer look
        Path(os.environ["RTTRACE_DUMP"]).write_text("".join(f"{t} {n}\n" for t, n in events))
    print(_report(events))
    return 0


def _report(events: list[tuple[int, str]]) -> str:
    """Per step: median (p90) us since the step before, median us since delay() started."""
    trips: list[list[tuple[int, str]]] = []
    for t, name in events:
        if name == "client: delay() starts":
            trips.append([(t, name)])
        elif trips:
            trips[-1].append((t, name))
    trips = trips[:-1]  # the last may be cut short by the worker's stop
    steps: dict[str, list[tuple[float, float]]] = {}
    for trip in trips:
        start = prev = trip[0][0]
        seen: set[str] = set()
        for t, name in trip[1:]:
            if name in seen:  # the GET again once subscribed: keep the first
                continue
            seen.add(name)
            steps.setdefault(name, []).append(((t - prev) / 1e3, (t - start) / 1e3))
            prev = t
    order = sorted(steps, key=lambda n: statistics.median(s for _, s in steps[n]))
    lines = [f"{len(trips)} round trips, load {os.getloadavg()[0]:.1f}",
             "| step | since the step before: median (p90) | since delay(): median | seen |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for name in order:
        gaps = sorted(g for g, _ in steps[name])
        since = statistics.median(s for _, s in steps[name])
        p90 = gaps[int(len(gaps) * 0.9)]
        lines.append(
            f"| {name} | {statistics.median(gaps):.0f} ({p90:.0f}) us | {since:.0f} us "
            f"| {len(gaps)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
