"""Celeriac's drain from two checkouts, alternating in one run: is one slower than the other?

    python -m bench.regress OLD_TREE [--new TREE] [--rounds 5] [--only redis,amqp]
                            [--pools x16,default,prefork] [--tasks 20000] [--out FILE]

Each tree needs its own ``.venv`` with Celeriac installed from that tree (editable), as
``scripts/bootstrap`` makes it. Every round drains the same preloaded no-op tasks once with each
tree's worker, for each broker and pool, the order of the two trees swapped every round, so
both see the same load on a shared machine. The queue is preloaded by this checkout's client
(the same messages for both), and each worker runs ``bench.celeriac_app`` from its own tree,
started and timed exactly as ``python -m bench all`` times the Celeriac drain (common.drain:
first take to an empty queue). Prints each drain, then medians and new / old ratios, and
writes them as JSON to ``--out``.

The pools are the compare section's two Celeriac configurations (``x16``: 2 processes x
threads 8, prefetch x16; ``default``: 2 processes x threads 8) and ``prefork`` (one worker,
``-P prefork -c 2``), which that section does not run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from .common import BACKEND_URL, REPO, Probe, Worker, drain, log
from .peers import env as peer_envs
from .suite import URLS, _Group, _queue, attempt
from .systems import Celeriac, Pool

POOLS = {
    "x16": Celeriac.pools[0],
    "default": Celeriac.pools[1],
    "prefork": Pool("1 process x prefork 2", 1, ("-P", "prefork", "-c", "2")),
}


def _python(tree: Path) -> Path:
    python = tree / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{tree}: no .venv/bin/python (make one as scripts/bootstrap does)")
    return python


def _check_tree(tree: Path) -> None:
    """Fail unless ``tree``'s interpreter imports Celeriac's worker from ``tree`` itself."""
    code = "import celeriac.worker as w; print(w.__file__)"
    where = subprocess.run(
        [str(_python(tree)), "-c", code], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree):
        raise SystemExit(f"{tree}/.venv imports celeriac.worker from {where}, not from {tree}")
    log(f"{tree}: celeriac.worker from {where}")


def _workers(tree: Path, url: str, queue: str, pool: Pool) -> list[Worker]:
    """The compare section's Celeriac worker command (systems.Celeriac.workers), run by
    ``tree``'s interpreter with ``tree`` first on the path."""
    env = {**peer_envs.peer_env(), "BENCH_BROKER": url, "BENCH_QUEUE": queue}
    env["BENCH_BACKEND"] = BACKEND_URL
    env["PYTHONPATH"] = str(tree)
    env.update(pool.env)
    argv = [str(_python(tree)), "-c", "from celeriac.cli import main; main()", "worker"]
    argv += ["-A", "bench.celeriac_app:app", "-Q", queue, "-l", "warning", *pool.args]
    return [Worker(argv, env, cwd=tree) for _ in range(pool.processes)]


def drain_once(tree: Path, broker: str, pool: Pool, count: int) -> dict[str, float]:
    """Preload ``count`` no-op tasks with this checkout's client; drain them with ``tree``."""
    url = URLS[broker]
    queue = _queue("regress")
    probe = Probe(url)
    try:
        Celeriac().preload(url, queue, count)
        group = _Group(_workers(tree, url, queue, pool))
        load = os.getloadavg()[0]
        try:
            result = drain(group, probe, queue, count)
        finally:
            group.stop()
        return {
            "rate": result.rate,
            "cpu_us": result.cpu / max(result.drained, 1) * 1e6,
            "load": load,
            "rss_loaded": result.rss_loaded,
        }
    finally:
        probe.delete(queue)
        probe.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.regress", description=__doc__.split("\n")[0])
    p.add_argument("old", type=Path, help="the checkout to compare with (its own .venv)")
    p.add_argument("--new", type=Path, default=REPO, help="default: this checkout")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="redis,amqp")
    p.add_argument("--pools", default="x16,default,prefork", help=f"of {', '.join(POOLS)}")
    p.add_argument("--tasks", type=int, default=20_000)
    p.add_argument("--out", type=Path, default=None, help="JSON of every drain and the medians")
    args = p.parse_args(argv)
    brokers = [b.strip() for b in args.only.split(",") if b.strip()]
    pools = [n.strip() for n in args.pools.split(",") if n.strip()]
    bad = [b for b in brokers if b not in ("redis", "amqp")] + [n for n in pools if n not in POOLS]
    if bad:
        p.error(f"unknown --only or --pools names: {bad}")
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():
        _check_tree(tree)
    rates: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for broker in brokers:
            for name in pools:
                for side in order:
                    what = f"round {r + 1}/{args.rounds} {broker} {name} {side}"
                    got = attempt(
                        what, partial(drain_once, trees[side], broker, POOLS[name], args.tasks)
                    )
                    rates.setdefault(f"{broker} {name} {side}", []).append(got)
                    if "error" not in got:
                        log(
                            f"{what}: {got['rate']:,.0f}/s, {got['cpu_us']:.0f} us CPU/task "
                            f"(load {got['load']:.1f})"
                        )
    summary = _summary(rates, brokers, pools)
    print(_table(summary, args.rounds))
    if args.out:
        data = {"trees": {k: str(v) for k, v in trees.items()}, "tasks": args.tasks,
                "rounds": args.rounds, "drains": rates, "summary": summary}  # fmt: skip
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    return 0


def _summary(
    drains: dict[str, list[dict[str, Any]]], brokers: list[str], pools: list[str]
) -> list[dict[str, Any]]:
    """Per broker and pool: each side's drains, their medians, and new / old."""
    rows = []
    for broker in brokers:
        for name in pools:
            row: dict[str, Any] = {"broker": broker, "pool": POOLS[name].label}
            for side in ("old", "new"):
                ok = [d for d in drains.get(f"{broker} {name} {side}", []) if "error" not in d]
                for key in ("rate", "cpu_us"):
                    row[f"{side}_{key}_all"] = values = [d[key] for d in ok]
                    row[f"{side}_{key}"] = statistics.median(values) if values else None
            for key in ("rate", "cpu_us"):
                if row[f"old_{key}"] and row[f"new_{key}"]:
                    row[f"{key}_ratio"] = row[f"new_{key}"] / row[f"old_{key}"]
            rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]], rounds: int) -> str:
    def fig(row: dict[str, Any], key: str, form: str) -> str:
        v = row.get(key)
        return "-" if v is None else format(v, form)

    lines = [
        "| broker | pool | drain old | drain new | new / old | CPU/task old | CPU/task new "
        "| new / old | drains old (each) | drains new (each) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        each = {s: ", ".join(f"{v:,.0f}" for v in row[f"{s}_rate_all"]) for s in ("old", "new")}
        lines.append(
            f"| {row['broker']} | {row['pool']} "
            f"| {fig(row, 'old_rate', ',.0f')}/s | {fig(row, 'new_rate', ',.0f')}/s "
            f"| {fig(row, 'rate_ratio', '.3f')} "
            f"| {fig(row, 'old_cpu_us', '.0f')} us | {fig(row, 'new_cpu_us', '.0f')} us "
            f"| {fig(row, 'cpu_us_ratio', '.3f')} | {each['old']} | {each['new']} |"
        )
    lines.append(
        f"\nMedians of {rounds} drains per side; CPU/task: the worker processes' CPU "
        "time over the timed span, per task drained."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
