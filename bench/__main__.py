"""``python -m bench all``: Celeriac beside Celery 5.7, Dramatiq and Taskiq in one run.

    python -m bench all [--quick] [--runs 3] [--only redis,amqp,sqs,kafka,zookeeper]
                        [--sections compare,ceiling,scaling,distance,io,iodrain] [--out bench]

On Redis and RabbitMQ: publish rate (plain delay loop, and our batch API), drain rate of
preloaded no-op tasks with each system's best pool, round trips p50/p90/p99, idle and loaded
worker RSS, the raw broker ceiling and the practical Python ceiling, each system's scaling with
worker processes and payload sizes, the drain 2 ms from the broker, sleep-bound tasks (100 ms)
on the asyncio and thread pools, and the drain of tasks sleeping 10 ms on each system's I/O
pools. SQS: Celeriac and Celery side by side; SQS, Kafka and ZooKeeper:
the transport against the bare client loop. ``--only memory`` runs the in-memory transport
alone (no broker: a smoke test). The peers run in venvs of their own, built on first use
(bench/peers/env.py; Celery's by interop/celery_env.py). Writes results.json, results.png and
RESULTS.md into ``--out`` (default: bench/).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report, suite
from .common import log

BROKERS = ("redis", "amqp", "sqs")
TRANSPORTS = ("sqs", "kafka", "zookeeper", "memory")
SECTIONS = ("compare", "ceiling", "scaling", "distance", "io", "iodrain")
NOTES_FILE = Path(__file__).resolve().parent / "NOTES.md"


def _machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    return f"{platform.platform()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"


def run_broker(broker: str, sections: list[str], sizes: suite.Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    systems = suite.systems_for(broker)
    if "compare" in sections:
        out["compare"] = suite.compare(broker, systems, sizes)
    if broker == "sqs":
        return out
    if "ceiling" in sections:
        from . import ceiling

        log(f"{broker}: raw broker and practical Python ceilings")
        out["ceiling"] = suite.attempt(
            f"{broker} ceilings", lambda: ceiling.measure(broker, sizes.raw)
        )
    if "scaling" in sections:
        out["scaling"] = suite.attempt(
            f"{broker} scaling", lambda: suite.scaling(broker, sizes, systems)
        )
    if "distance" in sections:
        out["distance"] = suite.attempt(
            f"{broker} distance", lambda: suite.distance(broker, sizes, systems)
        )
    if "io" in sections:
        out["io"] = suite.attempt(f"{broker} io", lambda: suite.io_bound(broker, sizes, systems))
    if "iodrain" in sections:
        out["io_drain"] = suite.attempt(
            f"{broker} io drain", lambda: suite.io_drain(broker, sizes, systems)
        )
    return out


def _measure(
    runs: int,
    brokers: list[str],
    transports: list[str],
    sections: list[str],
    sizes: suite.Sizes,
    out: Path,
    per_run: list[dict[str, Any]],
) -> None:
    for run in range(runs):
        log(f"run {run + 1} of {runs}")
        result: dict[str, Any] = {"brokers": {}, "transports": {}}
        per_run.append(result)
        for broker in brokers:
            result["brokers"][broker] = run_broker(broker, sections, sizes)
            _save_partial(out, per_run)
        if transports:
            result["transports"] = suite.attempt(
                "transports", lambda: suite.transports(transports, sizes)
            )
            _save_partial(out, per_run)


def _save_partial(out: Path, per_run: list[dict[str, Any]]) -> None:
    """What has been measured so far, so an interrupted run still leaves its figures."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "partial.json").write_text(json.dumps(per_run, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command", choices=["all", "report"], help="all: measure; report: re-render --out's JSON"
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for development")
    parser.add_argument("--runs", type=int, default=None, help="medians of N runs (default 3)")
    parser.add_argument("--only", default="redis,amqp,sqs,kafka,zookeeper")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument(
        "--tasks",
        type=int,
        help="no-op tasks per publish/drain (default 20,000; a quarter of "
        "it sleeping 10 ms for the I/O drain)",
    )
    args = parser.parse_args(argv)
    if args.command == "report":
        import json

        merged = json.loads((args.out / "results.json").read_text())
        report.console(merged)
        notes = NOTES_FILE.read_text() if NOTES_FILE.exists() else ""
        report.write(merged, args.out, notes)
        return 0
    runs = args.runs or (1 if args.quick else 3)
    sizes = suite.Sizes.quick_sizes() if args.quick else suite.Sizes()
    if args.tasks:
        sizes.tasks = args.tasks
        sizes.payload_counts[100] = args.tasks
        sizes.io_drain = args.tasks // 4
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(only) - set(BROKERS) - set(TRANSPORTS)
    if unknown:
        parser.error(f"unknown --only names: {sorted(unknown)}")
    sections = args.sections.split(",")
    brokers = [b for b in BROKERS if b in only]
    transports = [t for t in TRANSPORTS if t in only and t != "sqs"]
    if "sqs" in only:
        transports.insert(0, "sqs")
    started = time.monotonic()
    per_run: list[dict[str, Any]] = []
    interrupted = False
    try:
        _measure(runs, brokers, transports, sections, sizes, args.out, per_run)
    except KeyboardInterrupt:
        # Stopped by hand (Ctrl-C, SIGINT): keep what was measured, say so in the results.
        interrupted = True
        log("interrupted: writing what was measured so far")
    per_run = [r for r in per_run if r["brokers"] or r["transports"]]
    if not per_run:
        return 1
    merged: dict[str, Any] = suite.median_of(per_run)
    from .systems import versions

    vers = versions() if brokers else {}
    from importlib.metadata import version

    vers["celeriac"] = version("celeriac")
    merged["meta"] = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "seconds": time.monotonic() - started,
        "machine": _machine(),
        "python": platform.python_version(),
        "versions": vers,
        "brokers": "Redis 7, RabbitMQ 3.10, ElasticMQ (SQS), Kafka 4 (KRaft), ZooKeeper 3.8 "
        "on 127.0.0.1 (scripts/services)",
        "runs": len(per_run),
        "runs_asked": runs,
        "interrupted": interrupted,
        "sizes": {k: v for k, v in dataclasses.asdict(sizes).items() if k != "quick"},
    }
    merged["runs"] = per_run
    report.console(merged)
    notes = NOTES_FILE.read_text() if NOTES_FILE.exists() else ""
    paths = report.write(merged, args.out, notes)
    (args.out / "partial.json").unlink(missing_ok=True)
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
