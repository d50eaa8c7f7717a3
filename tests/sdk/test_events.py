"""Events on every transport: Celery's event types and fields from workers and clients, the
run-time switch, and ``celeriac events``."""

from __future__ import annotations

import json
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
from celeriac.events import EventReceiver
from celeriac.worker import run_worker, stop_worker
from tests.brokers import REDIS_URL, require
from tests.sdk.test_worker import E2E_TRANSPORTS
from tests.transports.conftest import url_for
from tests.waiting import collect, eventually

REPO = Path(__file__).resolve().parents[2]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))


@pytest.fixture(params=E2E_TRANSPORTS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    application = App(
        "evented",
        broker=url_for(str(request.param), tmp_path),
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue=f"events.{uuid.uuid4().hex[:8]}",
        task_send_sent_event=True,
    )

    @application.task(name="ev.add")
    def add(x: int, y: int) -> int:
        return x + y

    @application.task(name="ev.fail")
    def fail() -> None:
        raise ValueError("boom")

    yield application
    application.close()


def _collect(receiver: EventReceiver, until: Any, timeout: float = 30) -> list[dict[str, Any]]:
    return collect(receiver.next, until, timeout)


def _types(events: list[dict[str, Any]], uuid_: str) -> list[str]:
    return [e["type"] for e in events if e.get("uuid") == uuid_]


def test_task_and_worker_events(app: App) -> None:
    app.conf.update(worker_send_task_events=True)
    with EventReceiver(app) as receiver:
        worker = run_worker(app, concurrency=2, hostname=f"ev-{uuid.uuid4().hex[:6]}@test")
        ok = app.send_task("ev.add", (2, 3))
        bad = app.send_task("ev.fail")
        assert ok.get(timeout=30) == 5

        def done(seen: list[dict[str, Any]]) -> bool:
            types = {e["type"] for e in seen}
            return {"worker-online", "worker-heartbeat", "task-succeeded", "task-failed"} <= types

        events = _collect(receiver, done)
        stop_worker(worker)
        events += _collect(receiver, lambda s: any(e["type"] == "worker-offline" for e in s), 15)
    # The client's task-sent and the worker's events come from two senders: no order between them.
    seen = _types(events, ok.id)
    assert sorted(seen) == ["task-received", "task-sent", "task-started", "task-succeeded"]
    assert [t for t in seen if t != "task-sent"] == [
        "task-received",
        "task-started",
        "task-succeeded",
    ]
    assert _types(events, bad.id)[-1] == "task-failed"
    succeeded = next(e for e in events if e["type"] == "task-succeeded")
    assert succeeded["result"] == "5" and succeeded["runtime"] >= 0
    received = next(e for e in events if e["type"] == "task-received" and e["uuid"] == ok.id)
    assert received["name"] == "ev.add" and received["hostname"] == worker.hostname
    failed = next(e for e in events if e["type"] == "task-failed")
    assert "boom" in failed["exception"]
    for e in events:  # Celery's common fields
        assert {"type", "hostname", "timestamp", "utcoffset", "pid", "clock"} <= e.keys(), e
    heartbeat = next(e for e in events if e["type"] == "worker-heartbeat")
    assert {"freq", "active", "processed", "loadavg", "sw_ident"} <= heartbeat.keys()
    assert any(e["type"] == "worker-offline" for e in events)


def test_events_switched_on_and_off_at_run_time(app: App) -> None:
    app.conf.update(task_send_sent_event=False)
    worker = run_worker(app, concurrency=2, hostname=f"ev-{uuid.uuid4().hex[:6]}@test")
    try:
        with EventReceiver(app) as receiver:
            quiet = app.send_task("ev.add", (1, 1))
            assert quiet.get(timeout=30) == 2
            # The result is stored before the worker settles the message: wait for the settle.
            eventually(lambda: worker.processed >= 1, 10, "the first task settled")
            reply = app.control.call(
                "enable_events", destination=[worker.hostname], timeout=10, limit=1
            )
            assert reply == {worker.hostname: {"ok": "task events enabled"}}
            loud = app.send_task("ev.add", (2, 2))
            events = _collect(receiver, lambda s: "task-succeeded" in _types(s, loud.id))
            assert "task-succeeded" in _types(events, loud.id)
            assert _types(events, quiet.id) == []
            app.control.call("disable_events", destination=[worker.hostname], timeout=10, limit=1)
            assert worker.send_events is False
    finally:
        stop_worker(worker)


def test_events_command_dumps_json_lines(tmp_path: Path) -> None:
    require("redis")
    queue = f"events.cli.{uuid.uuid4().hex[:8]}"
    app = App(
        "evcli",
        broker=REDIS_URL,
        backend=None,
        task_default_queue=queue,
        worker_send_task_events=True,
    )

    @app.task(name="ev.add")
    def add(x: int, y: int) -> int:
        return x + y

    proc = subprocess.Popen(
        [CELERIAC, "events", "--dump", "-b", REDIS_URL, "-t", "10", "-n", "3"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    worker = run_worker(app, concurrency=1, hostname=f"evcli-{uuid.uuid4().hex[:6]}@test")
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            app.send_task("ev.add", (1, 2)).get(timeout=10)
        out, _ = proc.communicate(timeout=20)
    finally:
        stop_worker(worker)
        app.close()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 3 and all("type" in e and "hostname" in e for e in lines), out
