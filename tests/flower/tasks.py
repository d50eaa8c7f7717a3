"""Tasks for the Celeriac worker Flower watches (``-A tests.flower.tasks:app``)."""

from __future__ import annotations

import os
import threading

from celeriac import App

app = App(
    "flower_watched",
    broker=os.environ.get("FLOWER_TEST_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("FLOWER_TEST_BACKEND", "redis://127.0.0.1:6379/0"),
    task_default_queue=os.environ.get("FLOWER_TEST_QUEUE", "flower"),
    task_send_sent_event=True,
)


@app.task(name="flower.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="flower.fail")
def fail(why: str) -> None:
    raise ValueError(why)


@app.task(name="flower.wait")
def wait(seconds: float) -> float:
    """Runs until it is terminated, or ``seconds`` pass. Short waits: a thread pool stops a
    task between two Python steps, never inside one blocking call."""
    pause = threading.Event()
    for _ in range(int(seconds * 10)):
        pause.wait(0.1)
    return seconds
