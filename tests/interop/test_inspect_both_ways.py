"""Remote control between real Celery 5.7 and Celeriac, on Redis and RabbitMQ: ``celery inspect``
answered by a Celeriac worker, and ``celeriac inspect`` answered by a Celery worker."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.cli import main
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import unique

pytestmark = [pytest.mark.celery, pytest.mark.broker]


def celery_cli(broker: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``celery -b BROKER ...`` with the Celery 5.7 venv."""
    return subprocess.run(
        [str(celery_env.ensure(quiet=True)), "-m", "celery", "-b", broker, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=celery_env._clean_env(None),
    )


def _json_tail(text: str) -> dict[str, object]:
    """Celery prints the JSON replies last, possibly after log lines."""
    start = text.index("{")
    return dict(json.loads(text[start:]))


@pytest.fixture
def our_worker(broker: str) -> Iterator[tuple[App, str, threading.Event]]:
    gate = threading.Event()
    app = App("inspected", broker=broker, backend=None, task_default_queue=unique("inspected"))

    @app.task(name="e2e.wait")
    def wait(seconds: float) -> str:
        gate.wait(seconds)
        return "done"

    hostname = f"celeriac-{uuid.uuid4().hex[:6]}@test"
    worker = run_worker(app, concurrency=2, hostname=hostname)
    yield app, hostname, gate
    gate.set()
    stop_worker(worker)
    app.close()


def test_celery_inspect_ping_and_active_answered_by_celeriac(
    broker: str, our_worker: tuple[App, str, threading.Event]
) -> None:
    app, hostname, gate = our_worker
    proc = celery_cli(broker, "inspect", "ping", "-d", hostname, "-t", "5", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _json_tail(proc.stdout) == {hostname: {"ok": "pong"}}
    running = app.send_task("e2e.wait", (60,))
    deadline = time.monotonic() + 30
    active: list[dict[str, object]] = []
    while not active and time.monotonic() < deadline:
        proc = celery_cli(broker, "inspect", "active", "-d", hostname, "-t", "5", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        active = list(_json_tail(proc.stdout)[hostname])  # type: ignore[call-overload]
    assert [t["id"] for t in active] == [running.id]  # type: ignore[index]
    assert active[0]["name"] == "e2e.wait"  # type: ignore[index]
    gate.set()


def test_celeriac_inspect_answered_by_celery(broker: str) -> None:
    queue = unique("celery-inspected")
    hostname = f"celery-{uuid.uuid4().hex[:6]}@test"
    with celery_env.e2e_worker(broker, queue, hostname, extra_args=["--without-heartbeat"]):
        runner = CliRunner()
        args = ["-b", broker, "-d", hostname, "-t", "10", "--json"]
        result = runner.invoke(main, ["inspect", "ping", *args])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {hostname: {"ok": "pong"}}
        result = runner.invoke(main, ["inspect", "registered", *args])
        assert result.exit_code == 0, result.output
        assert "e2e.add" in json.loads(result.output)[hostname]
