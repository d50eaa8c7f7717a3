"""The prefork pool: tasks in child processes, limits enforced by replacing children."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.exceptions import TimeLimitExceeded
from celeriac.worker.consumer import Worker, run_worker, stop_worker
from tests.brokers import REDIS_URL, require


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    if request.param == "redis":
        require("redis")
        broker, backend = REDIS_URL, REDIS_URL.rsplit("/", 1)[0] + "/3"
    else:
        broker, backend = f"sqlite:///{tmp_path}/b.db", f"sqlite:///{tmp_path}/r.db"
    application = App("pf", broker=broker, backend=backend,
                      task_default_queue=f"pf.{uuid.uuid4().hex[:8]}",
                      worker_max_tasks_per_child=3)  # fmt: skip

    @application.task
    def pid(n: int) -> int:
        return os.getpid()

    @application.task(time_limit=0.5)
    def stuck() -> None:
        while True:
            time.sleep(0.01)

    @application.task
    def add(x: int, y: int) -> int:
        return x + y

    @application.task
    def die() -> None:
        os._exit(1)

    yield application
    application.close()


def test_tasks_run_in_children_that_are_recycled(app: App) -> None:
    w = run_worker(app, pool="prefork", concurrency=2)
    try:
        sent = [app.tasks[f"{__name__}.pid"].delay(i) for i in range(12)]
        pids = [r.get(timeout=30) for r in sent]
    finally:
        stop_worker(w)
    assert os.getpid() not in pids
    assert len(set(pids)) >= 4  # 2 children, each replaced after 3 tasks


def test_hard_time_limit_replaces_the_child(app: App) -> None:
    w = run_worker(app, pool="prefork", concurrency=2)
    try:
        with pytest.raises(TimeLimitExceeded):
            app.tasks[f"{__name__}.stuck"].delay().get(timeout=30)
        assert app.tasks[f"{__name__}.add"].delay(2, 3).get(timeout=30) == 5
    finally:
        stop_worker(w)


def test_a_dead_child_gives_its_task_back(app: App) -> None:
    w = run_worker(app, pool="prefork", concurrency=2)
    try:
        app.tasks[f"{__name__}.die"].delay()
        deadline = time.monotonic() + 20
        seen: set[Any] = set()
        while time.monotonic() < deadline and len(seen) < 2:
            seen.add(_child_pids(w))
            time.sleep(0.05)  # watching the pool replace the child that died
        assert app.tasks[f"{__name__}.add"].delay(1, 1).get(timeout=30) == 2
    finally:
        stop_worker(w)
    assert len(seen) >= 2


def _child_pids(w: Worker) -> tuple[int, ...]:
    assert w.prefork is not None
    return tuple(sorted(c.process.pid for c in w.prefork.children))


def test_memory_urls_are_refused_for_prefork() -> None:
    with pytest.raises(ValueError, match="memory://"):
        Worker(App(broker="memory://x", backend="memory://x"), pool="prefork")
