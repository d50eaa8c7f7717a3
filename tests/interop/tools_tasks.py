"""The Celeriac twins of ``celery_side/tools_app.py``: the same task names and behaviour, so the
same scenario runs on a Celery 5.7 worker and a Celeriac worker."""

from __future__ import annotations

import time
from pathlib import Path

from celeriac import App
from celeriac.exceptions import Reject
from interop import celery_env

#: Where the Celery side's app module lives (its PYTHONPATH).
CELERY_SIDE = Path(__file__).resolve().parent / "celery_side"


def celery_worker(
    broker: str, queue: str, hostname: str, *extra_args: str, backend: str | None = None
) -> celery_env.CeleryWorker:
    """A Celery 5.7 worker of the tools app on ``queue`` (start it with ``with``); later
    ``extra_args`` win over the harness's ``-P solo``."""
    return celery_env.CeleryWorker(
        CELERY_SIDE,
        "tools_app",
        broker_url=broker,
        backend_url=backend,
        queues=[queue],
        hostname=hostname,
        env={"CELERIAC_E2E_QUEUE": queue},
        ready_timeout=90.0,
        extra_args=list(extra_args),
    )


def _steps(seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return seconds


def register(app: App) -> None:
    """Declare the tools tasks on ``app``."""

    @app.task(name="tools.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="tools.sleep")
    def sleep(seconds: float) -> float:
        return _steps(seconds)

    @app.task(name="tools.soft", soft_time_limit=0.5)
    def soft(seconds: float) -> float:
        return _steps(seconds)

    @app.task(name="tools.hard", time_limit=0.5)
    def hard(seconds: float) -> float:
        return _steps(seconds)

    @app.task(name="tools.reject", acks_late=True)
    def reject(why: str) -> None:
        raise Reject(why, requeue=False)
