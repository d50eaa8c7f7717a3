"""The app fault-scenario workers run (``celeriac worker -A tests.faults.app:app``): one task that
writes its id into a SQLite ledger, so the test can tell what ran, and how often."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time

from celeriac import App

app = App("faults")
_local = threading.local()


def ledger() -> sqlite3.Connection:
    """This thread's connection to the ledger (sqlite3 connections stay on their thread)."""
    db: sqlite3.Connection | None = getattr(_local, "db", None)
    if db is None:
        db = sqlite3.connect(os.environ["FAULTS_LEDGER"], timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS runs (task_id TEXT, pid INTEGER, at REAL)")
        _local.db = db
    return db


@app.task(name="faults.record", bind=True)
def record(self: object, n: int) -> int:
    """Work a little (so kills land mid-task), then write down that this call ran."""
    most = float(os.environ.get("FAULTS_TASK_S", "0.02"))
    if most > 0:  # (0 under libfaketime, whose clock_nanosleep breaks time.sleep)
        time.sleep(random.uniform(0.0, most))
    task_id = self.request.id  # type: ignore[attr-defined]
    pause = threading.Event()
    for _ in range(3000):
        try:
            ledger().execute(
                "INSERT INTO runs VALUES (?, ?, ?)", (task_id, os.getpid(), time.time())
            )
            return n
        except sqlite3.OperationalError:
            # "database is locked": under libfaketime SQLite's busy timeout gives up at once, so
            # the ledger retries itself, waiting on the (unfaked) monotonic clock.
            pause.wait(0.01)
    raise RuntimeError("the ledger stayed locked for 30 s")
