"""The Celery 5.7 side of the tools tests (run under the Celery venv, never imported by
Celeriac): tasks for the situations Celery's tools must see truthfully on both workers (long
tasks, time limits, a rejected message). ``tests/interop/tools_tasks.py`` declares the same
names for a Celeriac worker."""

from __future__ import annotations

import os
import time

from celery import Celery
from celery.exceptions import Reject

app = Celery("celeriac-tools", set_as_current=True)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ.get("CELERIAC_E2E_QUEUE", "celery"),
)


@app.task(name="tools.add")
def add(x, y):
    return x + y


@app.task(name="tools.sleep")
def sleep(seconds):
    # Short steps: a thread pool can stop a task only between two Python steps.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return seconds


@app.task(name="tools.soft", soft_time_limit=0.5)
def soft(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return seconds


@app.task(name="tools.hard", time_limit=0.5)
def hard(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return seconds


@app.task(name="tools.reject", acks_late=True)
def reject(why):
    raise Reject(why, requeue=False)
