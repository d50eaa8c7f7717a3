"""Tasks for the Celeriac worker Flower watches (``-A tests.flower.tasks:app``)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from celeriac import App
from celeriac.exceptions import Reject

app = App(
    "flower_watched",
    broker=os.environ.get("FLOWER_TEST_BROKER", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("FLOWER_TEST_BACKEND", "redis://127.0.0.1:6379/0"),
    task_default_queue=os.environ.get("FLOWER_TEST_QUEUE", "flower"),
    task_send_sent_event=True,
    worker_pool_restarts=True,  # Flower's pool restart action
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


@app.task(name="flower.flaky", bind=True, max_retries=3)
def flaky(self: Any, key: str) -> int:
    """Retries once (the attempts are counted in Redis), then returns the attempt number."""
    import redis

    attempt = int(redis.Redis.from_url(app.conf.result_backend).incr(key))
    if attempt < 2:
        raise self.retry(exc=RuntimeError(f"attempt {attempt}"), countdown=0.1)
    return attempt


@app.task(name="flower.soft", soft_time_limit=0.5)
def soft(seconds: float) -> float:
    """Passes its soft time limit and does not catch it: a FAILURE."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return seconds


@app.task(name="flower.reject", acks_late=True)
def reject(why: str) -> None:
    raise Reject(why, requeue=False)
