"""The app the task-fault tests' workers run (``celeriac worker -A tests.faults.task_app:app``):
tasks that misbehave in the ways a task can, each writing a line to a SQLite ledger first, so
the test counts how often each call ran. Settings come from ``CELERIAC_*`` variables."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

from celeriac import App

app = App("task-faults")


def mark(task_id: str, what: str) -> None:
    """Write down that ``what`` ran once as ``task_id`` (durably: the caller may die next)."""
    with sqlite3.connect(os.environ["FAULTS_LEDGER"], timeout=60, isolation_level=None) as db:
        db.execute("CREATE TABLE IF NOT EXISTS runs (task_id TEXT, what TEXT, pid INTEGER)")
        db.execute("INSERT INTO runs VALUES (?, ?, ?)", (task_id, what, os.getpid()))


class BadRepr(Exception):
    """An exception that cannot be printed."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


@app.task(name="tf.ok", bind=True)
def ok(self: object, x: object = None) -> str:
    mark(self.request.id, "ok")  # type: ignore[attr-defined]
    return f"ok {x}"


@app.task(name="tf.unserialisable", bind=True)
def unserialisable(self: object) -> object:
    mark(self.request.id, "unserialisable")  # type: ignore[attr-defined]
    return object()


@app.task(name="tf.bad_repr", bind=True)
def bad_repr(self: object) -> None:
    mark(self.request.id, "bad_repr")  # type: ignore[attr-defined]
    raise BadRepr()


@app.task(name="tf.exit", bind=True)
def exit_process(self: object) -> None:
    """Leave the process that runs it at once, as a crashing C extension would."""
    mark(self.request.id, "exit")  # type: ignore[attr-defined]
    os._exit(1)


@app.task(name="tf.sigkill", bind=True)
def sigkill(self: object) -> None:
    """SIGKILL the process that runs it: a prefork child, or the whole worker otherwise."""
    mark(self.request.id, "sigkill")  # type: ignore[attr-defined]
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="tf.rate_at_the_end", bind=True, rate_limit="1/h")
def rate_at_the_end(self: object) -> str:
    mark(self.request.id, "rate_at_the_end")  # type: ignore[attr-defined]
    return "ran"


@app.task(name="tf.rate_past_the_end", bind=True)
def rate_past_the_end(self: object) -> str:
    mark(self.request.id, "rate_past_the_end")  # type: ignore[attr-defined]
    return "ran"


# Past the range: @app.task refuses it, so it is set behind registration's back (as code that
# edits a task's options at run time would); the worker must still refuse it, for this task only.
rate_past_the_end.options["rate_limit"] = "0.5/h"


@app.task(name="tf.busy", bind=True)
def busy(self: object, seconds: float) -> str:
    """Write down the start, then work for ``seconds`` (so a kill lands mid-batch)."""
    mark(self.request.id, "busy")  # type: ignore[attr-defined]
    threading.Event().wait(seconds)
    return "done"


@app.task(name="tf.pid", bind=True)
def pid(self: object, seconds: float) -> int:
    """Write down the start, then hold the process for ``seconds``."""
    mark(self.request.id, "pid")  # type: ignore[attr-defined]
    time.sleep(seconds)
    return os.getpid()
