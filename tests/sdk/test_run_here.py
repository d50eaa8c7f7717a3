"""A quick task that arrives alone at an idle threads pool runs in the loop's own thread
(no hop to a pool thread); anything that needs a pool thread still gets one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import App
from celeriac.worker import Worker, run_worker, stop_worker
from celeriac.worker.threads import QUICK

LOOP = "celeriac-worker"  # run_worker's thread: the loop


def _until_in_loop(call: Any) -> list[str]:
    """Call until a run lands in the loop (the first run after a pool thread's may not: that
    thread reports after the caller has its result); at most 20 calls."""
    names: list[str] = []
    while LOOP not in names and len(names) < 20:
        names.append(call())
    return names


@pytest.fixture
def app() -> Iterator[App]:
    name = uuid.uuid4().hex
    application = App("here", broker=f"memory://{name}", backend=f"memory://{name}")
    yield application
    application.close()


@pytest.fixture
def worker(app: App) -> Iterator[Worker]:
    w = run_worker(app, pool="threads", concurrency=4)
    yield w
    stop_worker(w)


def test_a_quick_task_alone_runs_in_the_loop_once_known_quick(app: App) -> None:
    @app.task
    def where() -> str:
        return threading.current_thread().name

    w = run_worker(app, pool="threads", concurrency=4)
    try:
        names = _until_in_loop(lambda: where.delay().get(timeout=10))
        assert names[0] != LOOP  # not known yet: a pool thread runs it and times it
        assert names[-1] == LOOP
        # From then on the loop settles each before it fetches the next: all run there.
        assert [where.delay().get(timeout=10) for _ in range(3)] == [LOOP] * 3
    finally:
        stop_worker(w)


def test_a_task_with_a_time_limit_always_gets_a_pool_thread(app: App, worker: Worker) -> None:
    @app.task(soft_time_limit=5)
    def limited() -> str:
        return threading.current_thread().name

    names = [limited.delay().get(timeout=10) for _ in range(4)]
    assert LOOP not in names


def test_a_slow_task_goes_back_to_the_pool(app: App, worker: Worker) -> None:
    slow = {"on": False}

    @app.task
    def sometimes_slow() -> str:
        if slow["on"]:
            time.sleep(QUICK * 4)
        return threading.current_thread().name

    assert _until_in_loop(lambda: sometimes_slow.delay().get(timeout=10))[-1] == LOOP
    slow["on"] = True
    assert sometimes_slow.delay().get(timeout=10) == LOOP  # its last call was quick
    assert sometimes_slow.delay().get(timeout=10) != LOOP  # this one was not


def test_a_revoked_task_alone_is_not_run(app: App, worker: Worker) -> None:
    ran: list[str] = []

    @app.task
    def mark(key: str) -> str:
        ran.append(key)
        return threading.current_thread().name

    names = _until_in_loop(lambda: mark.delay("a").get(timeout=10))
    assert names[-1] == LOOP
    tid = uuid.uuid4().hex
    worker.revoke([tid])
    result = mark.apply_async(("c",), task_id=tid)
    with pytest.raises(Exception, match=r"(?i)revoked"):
        result.get(timeout=10)
    assert ran == ["a"] * len(names)


@pytest.mark.parametrize("pool", ["threads", "solo", "asyncio"])
def test_a_task_that_calls_exit_fails_and_the_worker_serves_on(app: App, pool: str) -> None:
    """A task's ``sys.exit()`` is that task's failure (stored, its message settled), never the
    worker's: in the loop's own thread (run_here, solo), on a pool thread, on the asyncio
    loop (asyncio re-raises SystemExit out of its loop)."""

    @app.task
    def fine() -> str:
        return "ok"

    @app.task
    def leaves() -> None:
        raise SystemExit(3)

    @app.task
    async def leaves_async() -> None:
        raise SystemExit(4)

    w = run_worker(app, pool=pool, concurrency=4)
    try:
        for _ in range(3):  # the first runs on a pool thread, later ones in the loop's
            failed = leaves.delay()
            with pytest.raises(SystemExit):
                failed.get(timeout=10)
            assert failed.state == "FAILURE"
            assert fine.delay().get(timeout=10) == "ok"
        exited = leaves_async.delay()
        with pytest.raises(SystemExit):
            exited.get(timeout=10)
        assert fine.delay().get(timeout=10) == "ok"
    finally:
        stop_worker(w)
