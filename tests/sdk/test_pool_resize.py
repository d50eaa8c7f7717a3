"""Every pool that can resize does: after ``pool_shrink`` no more tasks run at once than the new
size, after ``pool_grow`` and ``autoscale`` more do (observed in the tasks themselves); a task
prefetched but waiting for a slot is ``reserved``, not ``active``, and gets no ``task-started``
until it really starts (in the prefork child, when the coroutine starts)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.events import EventReceiver
from celeriac.worker import Worker, run_worker, stop_worker
from tests.transports.conftest import url_for
from tests.waiting import eventually

T = 5.0


def _app(name: str, tmp_path: Path, **settings: Any) -> App:
    return App(
        name,
        broker=url_for("sqlite", tmp_path),
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue=f"{name}.{uuid.uuid4().hex[:8]}",
        **settings,
    )


def _calls(tmp_path: Path) -> tuple[Path, Path]:
    """The folder the held tasks report to (``running/``, ``peaks``) and its release file."""
    where = tmp_path / "calls"
    (where / "running").mkdir(parents=True)
    return where, where / "release"


def _control(app: App, hostname: str) -> Callable[..., Any]:
    """A remote-control caller of the one worker ``hostname``: its reply."""

    def call(method: str, **arguments: Any) -> Any:
        replies = app.control.call(method, arguments, destination=[hostname], timeout=T, limit=1)
        return replies[hostname]

    return call


def _arrive(path: str, name: str) -> Path:
    """Marks a call running (a marker of its own: coroutines and threads share a pid) and logs
    how many run now; the marker."""
    here = Path(path)
    mark = here / "running" / name
    mark.touch()
    with (here / "peaks").open("a") as log:
        log.write(f"{len(os.listdir(here / 'running'))}\n")
    return mark


#: A held task gives up after this long, so a test that fails before releasing it cannot
#: leave a worker busy forever (each test releases its tasks within seconds).
HOLD_AT_MOST = 60.0


def _until_released(path: str) -> None:
    """Block a task body until the test creates ``release`` (another process may run it, so
    a file, not an Event), for HOLD_AT_MOST seconds at most."""
    release, deadline = Path(path) / "release", time.monotonic() + HOLD_AT_MOST
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _hold(path: str) -> str:
    """A task body that runs until the test releases it."""
    mark = _arrive(path, f"t-{uuid.uuid4().hex}")
    _until_released(path)
    mark.unlink()
    return "done"


async def _hold_async(path: str) -> str:
    """:func:`_hold` as a coroutine."""
    mark = _arrive(path, f"a-{uuid.uuid4().hex}")
    release, deadline = Path(path) / "release", time.monotonic() + HOLD_AT_MOST
    while not release.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    mark.unlink()
    return "done"


@contextmanager
def _serving(app: App, release: Path, **options: Any) -> Iterator[Worker]:
    """A worker of ``app`` for the block; then the held tasks released, the worker stopped."""
    worker = run_worker(app, **options)
    try:
        yield worker
    finally:
        release.touch()
        stop_worker(worker)
        app.close()


def _peak(where: Path) -> int:
    text = (where / "peaks").read_text() if (where / "peaks").exists() else ""
    return max((int(x) for x in text.split()), default=0)


def _running(where: Path) -> int:
    return len(os.listdir(where / "running"))


@pytest.mark.parametrize("pool", ["prefork", "asyncio", "threads"])
def test_resize_changes_how_many_run_at_once(pool: str, tmp_path: Path) -> None:
    where, release = _calls(tmp_path)
    app = _app("resize", tmp_path, worker_send_task_events=True)
    hold = app.task(name="resize.hold")(_hold_async if pool == "asyncio" else _hold)
    hostname = f"resize-{pool}-{uuid.uuid4().hex[:6]}@test"
    call = _control(app, hostname)

    with (
        _serving(app, release, pool=pool, concurrency=2, hostname=hostname),
        EventReceiver(app) as receiver,
    ):
        assert call("pool_shrink", n=1) == {"ok": "pool will shrink to 1"}
        first, second = hold.delay(str(where)), hold.delay(str(where))
        eventually(lambda: _running(where) == 1, 30, "one task running")

        def held() -> bool:
            return len(call("active")) == 1 and len(call("reserved")) == 1

        eventually(held, 30, "one task active and one reserved")
        assert _running(where) == 1 and _peak(where) == 1
        events: list[dict[str, Any]] = []
        while (event := receiver.next(timeout=0.5)) is not None:
            events.append(event)
        mine = {first.id, second.id}
        received = {e["uuid"] for e in events if e["type"] == "task-received"} & mine
        started = {e["uuid"] for e in events if e["type"] == "task-started"} & mine
        assert received == mine and len(started) == 1, events
        running = call("active")[0]
        assert started == {running["id"]}
        # As Celery's: the process that runs it (a prefork child), none for the waiting one.
        children = call("stats")["pool"]["processes"]
        pid = running["worker_pid"]
        if pool == "prefork":
            assert pid in children and pid != os.getpid(), (pid, children)
        else:
            assert pid == os.getpid()
        assert call("reserved")[0]["worker_pid"] is None

        assert call("pool_grow", n=2) == {"ok": "pool will grow to 3"}
        third = hold.delay(str(where))
        eventually(lambda: _running(where) == 3, 30, "three tasks running at once")
        assert call("stats")["pool"]["max-concurrency"] == 3
        if pool == "prefork":
            # As Celery's prefork (billiard): only idle processes are stopped.
            refused = call("pool_shrink", n=1)
            assert "can't shrink" in refused.get("error", ""), refused
            assert len(call("stats")["pool"]["processes"]) == 3
        assert call("autoscale", max=4, min=1) == {"ok": "autoscale now max=4 min=1"}
        fourth = hold.delay(str(where))
        eventually(lambda: _running(where) == 4, 30, "four tasks running at once")
        if pool == "prefork":
            assert len(call("stats")["pool"]["processes"]) == 4
        release.touch()
        for result in (first, second, third, fourth):
            assert result.get(timeout=30) == "done"
        assert _peak(where) == 4
        if pool == "prefork":  # idle now: a shrink stops a process
            assert call("pool_shrink", n=2) == {"ok": "pool will shrink to 2"}
            eventually(lambda: len(call("stats")["pool"]["processes"]) == 2, 30, "2 left")


def test_pool_restart_replaces_prefork_children_and_resets_rate_limits(tmp_path: Path) -> None:
    """Refused unless worker_pool_restarts is on (Celery's error); then idle children are
    replaced at once, a busy one when its task ends, and remote rate limits are reset."""
    where, release = _calls(tmp_path)
    app = _app("restart", tmp_path)

    @app.task(name="restart.hold")
    def hold(path: str) -> int:
        _arrive(path, str(os.getpid()))
        _until_released(path)
        return os.getpid()

    hostname = f"restart-{uuid.uuid4().hex[:6]}@test"
    call = _control(app, hostname)

    def pids() -> set[int]:
        return set(call("stats")["pool"]["processes"])

    with _serving(app, release, pool="prefork", concurrency=2, hostname=hostname):
        before = pids()
        assert call("pool_restart") == {"error": "ValueError('Pool restarts not enabled')"}
        assert pids() == before
        app.conf.worker_pool_restarts = True  # the worker reads its settings at each command
        running = hold.delay(str(where))
        eventually(lambda: os.listdir(where / "running"), 30, "the task running")
        busy = int(os.listdir(where / "running")[0])
        assert call("rate_limit", task_name="restart.hold", rate_limit="1/m")["ok"]
        assert call("pool_restart") == {"ok": "reload started"}
        after = pids()
        assert busy in after and len(after - before) == 1, (before, after)
        assert "restart.hold" in call("dump_tasks"), "the remote rate limit was not reset"
        release.touch()
        assert running.get(timeout=30) == busy
        eventually(lambda: not pids() & before, 30, "every child replaced")
        assert len(pids()) == 2
        again = hold.delay(str(where))
        assert again.get(timeout=30) in pids()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_autoscale_grows_under_load_and_shrinks_when_idle(
    pool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Celery's --autoscale: the pool starts at MIN, runs up to MAX at once under load, and
    comes back to MIN once idle for AUTOSCALE_KEEPALIVE; ``autoscale`` changes the bounds."""
    monkeypatch.setenv("AUTOSCALE_KEEPALIVE", "0.5")
    where, release = _calls(tmp_path)
    app = _app("autoscale", tmp_path)
    hold = app.task(name="autoscale.hold")(_hold)
    hostname = f"autoscale-{pool}-{uuid.uuid4().hex[:6]}@test"
    call = _control(app, hostname)

    def slots() -> int:
        return int(call("stats")["pool"]["max-concurrency"])

    with _serving(app, release, pool=pool, autoscale=(3, 1), hostname=hostname):
        stats = call("stats")
        assert stats["pool"]["max-concurrency"] == 1 and stats["prefetch_count"] == 3 * 4
        assert stats["autoscaler"] == {"max": 3, "min": 1, "current": 1, "qty": 0}
        results = [hold.delay(str(where)) for _ in range(4)]
        eventually(lambda: _running(where) == 3, 30, "three running at once (max)")
        assert slots() == 3 and call("stats")["autoscaler"]["qty"] == 4
        assert call("autoscale", max=2, min=1) == {"ok": "autoscale now max=2 min=1"}
        if pool == "threads":  # prefork: the three children are busy, shrunk once idle
            assert slots() == 2
        release.touch()
        assert [r.get(timeout=30) for r in results] == ["done"] * 4
        assert _peak(where) == 3
        eventually(lambda: slots() == 1, 30, "back to min once idle")


def test_bad_autoscale_is_refused_naming_the_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from celeriac.cli import main

    broker = ["-b", url_for("sqlite", tmp_path)]
    for bad in ("1,5", "x", "3,1,2", "0"):
        result = CliRunner().invoke(
            main, ["worker", "-A", "tests.sdk.apps.crashy:app", *broker, "--autoscale", bad]
        )
        assert result.exit_code == 2 and "--autoscale" in result.output, (bad, result.output)
    with pytest.raises(ValueError, match="solo pool cannot be resized"):
        Worker(App("solo", broker="memory://x"), pool="solo", autoscale=(2, 1))


def test_pool_restart_imports_and_reloads_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pool_restart`` with ``modules``: a module not imported yet is imported; with
    ``reload`` an imported one is loaded again (as Celery's worker does)."""
    import sys

    name = f"restart_mod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("VERSION = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    worker = Worker(App("restart-modules", broker="memory://x"), concurrency=1)
    try:
        worker.restart_pool([name])
        assert sys.modules[name].VERSION == 1
        (tmp_path / f"{name}.py").write_text("VERSION = 2\n")
        worker.restart_pool([name])  # imported already, no reload: unchanged
        assert sys.modules[name].VERSION == 1
        os.utime(tmp_path / f"{name}.py", (time.time() + 5, time.time() + 5))
        worker.restart_pool([name], reload=True)
        assert sys.modules[name].VERSION == 2
    finally:
        sys.modules.pop(name, None)
