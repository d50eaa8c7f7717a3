"""The prefork pool: tasks in child processes, limits enforced by replacing children."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.exceptions import TimeLimitExceeded, WorkerLostError
from celeriac.worker import Worker, run_worker, stop_worker
from celeriac.worker.prefork import PreforkPool
from tests.brokers import AMQP_URL, REDIS_URL, require
from tests.waiting import eventually


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    if request.param == "redis":
        require("redis")
        broker, backend = REDIS_URL, REDIS_URL.rsplit("/", 1)[0] + "/3"
    elif request.param == "amqp":
        require("rabbitmq")
        broker, backend = AMQP_URL, f"sqlite:///{tmp_path}/r.db"
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
        seen: set[Any] = set()

        def replaced() -> bool:
            seen.add(_child_pids(w))
            return len(seen) >= 2

        eventually(replaced, 20, "the child that died replaced", interval=0.05)
        assert app.tasks[f"{__name__}.add"].delay(1, 1).get(timeout=30) == 2
    finally:
        stop_worker(w)


def _child_pids(w: Worker) -> tuple[int, ...]:
    assert isinstance(w.pool, PreforkPool)
    return tuple(sorted(c.process.pid for c in w.pool.children))


def test_memory_urls_are_refused_for_prefork() -> None:
    with pytest.raises(ValueError, match="memory://"):
        Worker(App(broker="memory://x", backend="memory://x"), pool="prefork")


def test_a_child_that_kills_itself_ends_as_worker_lost_after_the_limit(app: App) -> None:
    app.conf.update(worker_max_deliveries=2)
    w = run_worker(app, pool="prefork", concurrency=2)
    try:
        dying = app.tasks[f"{__name__}.die"].delay()
        with pytest.raises(WorkerLostError):
            dying.get(timeout=60)
        assert dying.state == "FAILURE"
        assert app.tasks[f"{__name__}.add"].delay(1, 1).get(timeout=30) == 2
    finally:
        stop_worker(w)


def test_a_child_that_kills_itself_fails_at_once_without_reject_on_worker_lost(
    app: App,
) -> None:
    app.conf.update(task_reject_on_worker_lost=False)
    w = run_worker(app, pool="prefork", concurrency=1)
    try:
        with pytest.raises(WorkerLostError, match="exited with 1"):
            app.tasks[f"{__name__}.die"].delay().get(timeout=30)
    finally:
        stop_worker(w)


_PARENT = """
import os, sys, time
from pathlib import Path
from celeriac import App
from celeriac.worker import Worker
app = App("orphans", broker=sys.argv[1], backend=None, task_default_queue=sys.argv[2])

@app.task(name="orphans.busy")
def busy():
    Path(sys.argv[3], str(os.getpid())).touch()
    time.sleep(60)

for _ in range(3):
    busy.delay()
Worker(app, pool="prefork", concurrency=3).run()
"""


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command may hold spaces and parentheses: fields follow the last ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_sigkill_of_the_parent_leaves_no_child(tmp_path: Path) -> None:
    # Busy children: an idle one would leave on its own when its pipe to the parent closes.
    marks = tmp_path / "running"
    marks.mkdir()
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, f"sqlite:///{tmp_path}/b.db", "orphans", str(marks)],
        stderr=subprocess.DEVNULL,
    )
    try:
        eventually(lambda: len(list(marks.iterdir())) >= 3, 30, "three children busy")
        children = _children_of(parent.pid)
        running = {int(p.name) for p in marks.iterdir()}
        assert len(running) == 3 and running <= children, (running, children)
    finally:
        parent.kill()
        parent.wait(10)
    alive = children

    def gone() -> bool:
        nonlocal alive
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)}
        return not alive

    eventually(gone, 10, "every child gone", detail=lambda: f"children left behind: {alive}")


def _zombie(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
