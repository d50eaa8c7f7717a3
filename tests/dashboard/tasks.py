"""Tasks for the browser test's worker process (``-A tests.dashboard.tasks:app``)."""

from __future__ import annotations

import os
from pathlib import Path

from celeriac import App

app = App(
    "dashboard_browser",
    broker=os.environ.get("DASHBOARD_TEST_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("DASHBOARD_TEST_BACKEND", "redis://127.0.0.1:6379/0"),
    task_default_queue=os.environ.get("DASHBOARD_TEST_QUEUE", "dashboard"),
    task_send_sent_event=True,
    result_extended=True,  # the dashboard's retry sends what the worker stored
)


@app.task(name="dash.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="dash.echo")
def echo(*args: object) -> int:
    return len(args)


@app.task(name="dash.flaky")
def flaky(marker: str) -> str:
    """Fails the first time, succeeds when sent again (as the dashboard's retry does)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise ValueError("first run fails")
    return "second run worked"


@app.task(name="dash.touch")
def touch(marker: str) -> str:
    """Leaves a file behind if it runs: the revoked one must not."""
    Path(marker).write_text("ran")
    return "ran"
