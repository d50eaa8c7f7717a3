"""One cluster scenario: a worker drains a few thousand tasks, a fault lands mid-drain, and
the ledger (one row per run of each task, tests/faults/app.py) says what was lost, what ran
twice, and how long nothing ran."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celeriac import App
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
#: The worker CLI, with every thread's stack written to its log on SIGUSR1 (for a stuck one).
WORKER = [
    sys.executable,
    "-c",
    "import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1); "
    "from celeriac.cli import main; sys.argv[0] = 'celeriac'; main()",
]
#: Worker threads and prefetch multiplier: at most CONCURRENCY * PREFETCH deliveries are out
#: (unacked) at any moment, so at most that many can run twice after a fault.
CONCURRENCY = 4
PREFETCH = 4


@dataclass
class Figures:
    """What one scenario measured."""

    topology: str
    scenario: str
    tasks: int = 0
    lost: int = 0
    duplicated: int = 0
    #: Most deliveries that could be in flight (unacked) at the fault.
    bound: int = CONCURRENCY * PREFETCH
    #: Longest time no task ran, from the fault on (s).
    outage_s: float = 0.0
    #: From the cluster having a leader/master again to the first task run after it (s).
    resume_s: float = 0.0
    #: Task runs after that moment (so the fault did land mid-drain).
    ran_after: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def cell(self, name: str) -> str:
        value = getattr(self, name)
        return f"{value:.2f}" if isinstance(value, float) else str(value)


def runs(ledger: Path) -> list[tuple[str, float]]:
    """Every (task id, time) row of the ledger so far."""
    if not ledger.exists():
        return []
    with sqlite3.connect(ledger, timeout=60) as db:
        try:
            return [(r[0], r[1]) for r in db.execute("SELECT task_id, at FROM runs")]
        except sqlite3.OperationalError:
            return []  # no worker wrote yet


def drain_with_fault(
    work: Path,
    figures: Figures,
    client_url: str,
    worker_url: str,
    options: dict[str, Any],
    fault: Callable[[str], float],
    tasks: int = 3000,
    fault_after: float = 0.3,
    timeout: float = 180.0,
    worker_prefix: Sequence[str] = (),
) -> Figures:
    """Publish ``tasks`` tasks, start a worker, call ``fault(queue)`` once ``fault_after`` of
    them ran (it returns when the cluster has a leader/master again, as a ``time.time()``),
    then wait until every task ran and count. ``worker_prefix`` is put before the worker's
    command (``ip netns exec HOST`` runs it on another "host": tests/clusters/netns.py)."""
    queue = f"cluster.{uuid.uuid4().hex[:8]}"
    ledger = work / "ledger.db"
    client = App(
        "cluster-client",
        broker=client_url,
        result_backend=None,
        task_default_queue=queue,
        broker_transport_options=options,
    )
    ids = {client.send_task("faults.record", args=(n,)).id for n in range(tasks)}
    client.flush()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CELERIAC_BROKER_URL": worker_url,
        "CELERIAC_RESULT_BACKEND": "",
        "CELERIAC_TASK_DEFAULT_QUEUE": queue,
        "CELERIAC_BROKER_TRANSPORT_OPTIONS": json.dumps(options),
        "CELERIAC_WORKER_PREFETCH_MULTIPLIER": str(PREFETCH),
        "FAULTS_LEDGER": str(ledger),
        "FAULTS_TASK_S": "0.01",
    }
    log = work / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [
                *worker_prefix,
                *WORKER,
                "worker",
                "-A",
                "tests.faults.app:app",
                "-c",
                str(CONCURRENCY),
                "-l",
                os.environ.get("CLUSTER_WORKER_LOGLEVEL", "warning"),
            ],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def draining() -> bool:
        if worker.poll() is not None:  # fail now, with its log, not after the whole wait
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(
                f"the worker exited ({worker.returncode}) before draining:\n{tail}"
            )
        return len(runs(ledger)) >= tasks * fault_after

    try:
        eventually(draining, 120, "the worker draining", 0.05)
        fault_at = time.time()
        figures.extra["ran_before"] = len(runs(ledger))
        back_at = fault(queue)
        figures.extra["fault_took_s"] = round(back_at - fault_at, 2)
        try:
            eventually(lambda: ids <= {i for i, _ in runs(ledger)}, timeout, "all ran", 0.2)
        except AssertionError:
            worker.send_signal(signal.SIGUSR1)  # its stacks, in its log, to see where it waits
            # counted below as lost
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    rows = runs(ledger)
    counts = Counter(i for i, _ in rows)
    figures.tasks = tasks
    figures.lost = len(ids - set(counts))
    figures.duplicated = sum(n - 1 for i, n in counts.items() if i in ids and n > 1)
    times = sorted(t for _, t in rows if t >= fault_at)
    edges = [fault_at, *times]
    figures.outage_s = max((b - a for a, b in itertools.pairwise(edges)), default=0.0)
    after = [t for t in times if t >= back_at]
    figures.resume_s = (after[0] - back_at) if after else float("inf")
    figures.ran_after = len(after)
    figures.extra["ran_before_back"] = sum(1 for _, t in rows if t < back_at)
    figures.extra["log"] = str(log)
    return figures
