"""Remote control between real Celery 5.7 and Celeriac, on Redis and RabbitMQ: ``celery inspect``
answered by a Celeriac worker, and ``celeriac inspect`` answered by a Celery worker."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.cli import main
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import unique
from tests.waiting import eventually

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

    def active_there() -> list[dict[str, object]]:
        proc = celery_cli(broker, "inspect", "active", "-d", hostname, "-t", "5", "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        replies = _json_tail(proc.stdout)
        rows: list[dict[str, object]] = list(replies[hostname])  # type: ignore[call-overload]
        return rows

    active = eventually(active_there, 30, "the running task in celery inspect active")
    assert [t["id"] for t in active] == [running.id]
    assert active[0]["name"] == "e2e.wait"
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


#: Commands whose answer differs in kind on purpose (docs/operations.md lists each): Celery's
#: solo worker has no autoscaler and refuses; Celeriac's sets its pool (or says why not).
_KIND_MAY_DIFFER = {"autoscale", "pool_grow", "pool_shrink", "pool_restart", "objgraph"}
#: Celery answers None without psutil; Celeriac always measures (Celery's text with psutil).
_RICHER = {"memsample": "str"}


def _shape(value: object) -> object:
    """A reply's shape: dict keys (recursively for stats/pool), list element shapes, types."""
    if isinstance(value, dict):
        if set(value) <= {"ok", "error"}:
            return "ok-or-error" if value else {}
        # Nested: the keys only (their values' types vary with the pool and the transport).
        return {k: sorted(v) if isinstance(v, dict) else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _every_command(broker: str, node: str, queue: str, skip: str = "") -> dict[str, object]:
    script = str(__import__("pathlib").Path(__file__).with_name("celery_every_command.py"))
    proc = celery_env.run_script(script, broker, node, queue, skip, timeout=300)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_every_celery_command_answered_in_celerys_shape(broker: str) -> None:
    """Celery 5.7's client sends every inspect and control command to a Celery worker and to a
    Celeriac worker; each reply has Celery's shape (keys, nesting, types)."""
    queue = unique("every-command")
    celery_host = f"celery-{uuid.uuid4().hex[:6]}@test"
    with celery_env.e2e_worker(broker, queue, celery_host):
        # election needs gossip, which the harness turns off (and Celery then drops its link).
        theirs = _every_command(broker, celery_host, queue, "election")
    app = App("every-command", broker=broker, backend=None, task_default_queue=queue)

    @app.task(name="e2e.add")
    def add(x: int, y: int) -> int:
        return x + y

    hostname = f"celeriac-{uuid.uuid4().hex[:6]}@test"
    worker = run_worker(app, concurrency=2, hostname=hostname)
    try:
        ours = _every_command(broker, hostname, queue)
    finally:
        stop_worker(worker)
        app.close()
    assert "<no reply>" not in ours.values(), ours
    assert ours["election"] == {"error": "election: Celeriac workers do not run gossip"}
    assert ours["terminate"] == {"ok": "terminate: tasks unknown"} == theirs["terminate"]
    assert ours["heartbeat"] is None and theirs["heartbeat"] is None
    differences = {}
    for name, reply in theirs.items():
        if name in _KIND_MAY_DIFFER or name == "conf":
            continue
        a, b = _RICHER.get(name) or _shape(reply), _shape(ours[name])
        if isinstance(a, dict) and isinstance(b, dict):
            missing = {k: v for k, v in a.items() if b.get(k) != v}
            if missing:
                differences[name] = (missing, {k: b.get(k) for k in missing})
        elif a != b:
            differences[name] = (a, b)
    assert differences == {}, json.dumps(differences, indent=1, default=str)
    assert isinstance(ours["conf"], dict) and "broker_url" in ours["conf"]
    for name in _KIND_MAY_DIFFER:
        assert isinstance(ours[name], dict) and set(ours[name]) <= {"ok", "error"}, ours[name]


def test_celeriac_control_terminate_answered_by_celery(broker: str) -> None:
    """``celeriac control terminate`` sends the ``signal`` argument Celery's workers require."""
    queue = unique("celery-terminate")
    hostname = f"celery-{uuid.uuid4().hex[:6]}@test"
    with celery_env.e2e_worker(broker, queue, hostname):
        args = ["-b", broker, "-d", hostname, "-t", "10", "--json"]
        result = CliRunner().invoke(main, ["control", "terminate", "SIGKILL", "nope", *args])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {hostname: {"ok": "terminate: tasks unknown"}}
