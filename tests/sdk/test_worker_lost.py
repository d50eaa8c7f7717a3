"""``reject_on_worker_lost`` as a task option, over the ``task_reject_on_worker_lost`` setting
(as Celery decides): a prefork child that dies under a task either fails the task at once or
gives the message back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.exceptions import WorkerLostError
from celeriac.worker import run_worker, stop_worker


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(
        "lost",
        broker=f"sqlite:///{tmp_path}/b.db",
        backend=f"sqlite:///{tmp_path}/r.db",
        task_default_queue=f"lost.{uuid.uuid4().hex[:8]}",
        worker_max_deliveries=2,
    )

    @application.task(name="lost.fails_at_once", reject_on_worker_lost=False)
    def fails_at_once() -> None:
        os._exit(1)

    @application.task(name="lost.goes_back", reject_on_worker_lost=True)
    def goes_back() -> None:
        os._exit(1)

    yield application
    application.close()


def test_the_task_option_wins_over_the_setting(app: App) -> None:
    app.conf.update(task_reject_on_worker_lost=True)
    worker = run_worker(app, pool="prefork", concurrency=1)
    try:
        with pytest.raises(WorkerLostError, match="exited with 1"):
            app.tasks["lost.fails_at_once"].delay().get(timeout=30)
    finally:
        stop_worker(worker)


def test_a_task_that_asks_for_it_goes_back_to_the_queue(app: App) -> None:
    app.conf.update(task_reject_on_worker_lost=False)
    worker = run_worker(app, pool="prefork", concurrency=1)
    try:
        # Given back each time its child dies, until worker_max_deliveries calls it poison.
        with pytest.raises(WorkerLostError, match="worker_max_deliveries=2"):
            app.tasks["lost.goes_back"].delay().get(timeout=60)
    finally:
        stop_worker(worker)
