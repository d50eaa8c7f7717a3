"""Remote control and inspection on every transport: each Celery command answered by Celeriac
workers, with destination filtering, error replies for bad commands, and the CLI."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.cli import main
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import amqp_vhost, redis_db
from tests.sdk.test_worker import E2E_TRANSPORTS
from tests.transports.conftest import url_for
from tests.waiting import collect, eventually

T = 5.0  # reply timeout: generous, calls return as soon as every node named has answered


@pytest.fixture(params=E2E_TRANSPORTS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    broker = url_for(str(request.param), tmp_path)
    # Brokers of this file's own on the shared Redis and RabbitMQ: a broadcast ping is
    # answered by every worker on the broker, other test runs' included.
    if request.param == "redis":
        broker = redis_db(11)
    elif request.param == "amqp":
        broker = amqp_vhost("celeriac-remote")
    application = App(
        "remote",
        broker=broker,
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue=f"remote.{uuid.uuid4().hex[:8]}",
    )
    yield application
    application.close()


@pytest.fixture
def gate() -> threading.Event:
    return threading.Event()


@pytest.fixture
def workers(app: App, gate: threading.Event) -> Iterator[list[Worker]]:
    @app.task(name="remote.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="remote.wait")
    def wait(seconds: float) -> str:
        # Short waits: terminate raises inside the thread between them, not inside a C wait.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not gate.wait(0.05):
            pass
        return "done"

    tag = uuid.uuid4().hex[:6]
    started = [run_worker(app, concurrency=2, hostname=f"w{i}-{tag}@test") for i in (1, 2)]
    yield started
    gate.set()
    for w in started:
        if w.thread.is_alive():  # type: ignore[attr-defined]
            stop_worker(w)


def _call(app: App, method: str, nodes: list[str], **arguments: Any) -> dict[str, Any]:
    return app.control.call(method, arguments, destination=nodes, timeout=T, limit=len(nodes))


def test_every_command(app: App, workers: list[Worker]) -> None:
    w1, w2 = (w.hostname for w in workers)
    both = [w1, w2]
    # ping, everyone and by name
    assert _call(app, "ping", both) == {w1: {"ok": "pong"}, w2: {"ok": "pong"}}
    assert app.control.call("ping", destination=[w1], timeout=1.0) == {w1: {"ok": "pong"}}
    assert {n for r in app.control.ping(destination=both, timeout=T) for n in r} == set(both)
    # registered, active_queues, scheduled, reserved, revoked
    assert "remote.add" in _call(app, "registered", [w1])[w1]
    queue = app.conf.task_default_queue
    assert [q["name"] for q in _call(app, "active_queues", [w1])[w1]] == [queue]
    assert _call(app, "scheduled", [w1])[w1] == []
    assert isinstance(_call(app, "reserved", [w1])[w1], list)
    # a running task shows in active and query_task, and terminate stops it
    running = app.send_task("remote.wait", (60,))

    def running_where() -> dict[str, Any]:
        active = _call(app, "active", both)
        return {n: a for n, a in active.items() if any(t["id"] == running.id for t in a)}

    where = eventually(running_where, 30, "the running task in inspect active")
    node = next(iter(where))
    assert where[node][0]["name"] == "remote.wait" and where[node][0]["args"] == [60]
    assert _call(app, "query_task", [node], ids=[running.id])[node][running.id][0] == "active"
    reply = app.control.revoke(running.id, terminate=True, destination=both, reply=True, timeout=T)
    assert reply is not None
    # Celery's replies: the node that ran it names it, the other knows no such task.
    assert reply[node] == {"ok": f"terminate: tasks {running.id} flagged as revoked"}
    assert all(r == {"ok": "terminate: tasks unknown"} for n, r in reply.items() if n != node)
    assert running.state in ("REVOKED", "PENDING")
    with pytest.raises(Exception, match=r"[Rr]evoked"):
        running.get(timeout=30)
    assert running.id in _call(app, "revoked", [node])[node]
    # limits
    ok = app.control.rate_limit("remote.add", "100/s", destination=[w1], reply=True, timeout=T)
    assert ok == {w1: {"ok": "new rate limit set successfully"}}
    bad = app.control.rate_limit("remote.nope", "1/s", destination=[w1], reply=True, timeout=T)
    assert bad is not None and "unknown task" in bad[w1]["error"]
    ok = app.control.time_limit("remote.add", 5, 10, destination=[w1], reply=True, timeout=T)
    assert ok == {w1: {"ok": "time limits set successfully"}}
    assert workers[0].time_limits["remote.add"] == (5, 10)
    # queues: a task on a new queue runs once a worker consumes it
    extra = f"{queue}.extra"
    ok = app.control.add_consumer(extra, destination=[w1], reply=True, timeout=T)
    assert ok == {w1: {"ok": f"add consumer {extra}"}}
    assert app.send_task("remote.add", (2, 3), queue=extra).get(timeout=30) == 5
    ok = app.control.cancel_consumer(extra, destination=[w1], reply=True, timeout=T)
    assert ok == {w1: {"ok": f"no longer consuming from {extra}"}}
    # pool size
    app.control.pool_grow(2, destination=[w1], reply=True, timeout=T)
    assert _call(app, "stats", [w1])[w1]["pool"]["max-concurrency"] == 4
    app.control.pool_shrink(1, destination=[w1], reply=True, timeout=T)
    stats = _call(app, "stats", [w1])[w1]
    assert stats["pool"]["max-concurrency"] == 3 and stats["prefetch_count"] == 3 * 4
    # bad commands get error replies; the workers stay up
    assert "unknown control command" in _call(app, "no_such_command", [w1])[w1]["error"]
    assert "bad arguments" in _call(app, "rate_limit", [w1], bogus=1)[w1]["error"]
    assert _call(app, "ping", both) == {w1: {"ok": "pong"}, w2: {"ok": "pong"}}
    # shutdown, by name
    app.control.shutdown(destination=[w2], reply=True, timeout=T)
    workers[1].thread.join(30)  # type: ignore[attr-defined]
    assert not workers[1].thread.is_alive()  # type: ignore[attr-defined]
    # A broadcast: on the brokers shared with other runs (Kafka, SQS, ZooKeeper) their workers
    # may answer too, so only this test's two are judged.
    replies = app.control.call("ping", timeout=1.5)
    assert {n: r for n, r in replies.items() if n in (w1, w2)} == {w1: {"ok": "pong"}}


def test_cli_inspect_control_status(app: App, workers: list[Worker]) -> None:
    w1, w2 = (w.hostname for w in workers)
    runner = CliRunner()
    broker = ["-b", app.conf.broker_url, "-t", str(T)]
    result = runner.invoke(main, ["inspect", "ping", *broker, "-d", f"{w1},{w2}", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {w1: {"ok": "pong"}, w2: {"ok": "pong"}}
    result = runner.invoke(main, ["control", "rate_limit", "remote.add", "5/s", *broker, "-d", w1])
    assert result.exit_code == 0 and "new rate limit" in result.output, result.output
    result = runner.invoke(main, ["status", "-b", app.conf.broker_url, "-t", "2"])
    assert result.exit_code == 0 and w1 in result.output and w2 in result.output, result.output


def test_pool_shrink_and_grow_change_how_many_tasks_run_at_once(tmp_path: Path) -> None:
    """Observed in the tasks: after a shrink to 1 never two at once, after a grow to 3 three;
    a prefetched task waiting for a thread is not announced as started."""
    from celeriac.events import EventReceiver

    app = App(
        "resize",
        broker=url_for("sqlite", tmp_path),
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue=f"resize.{uuid.uuid4().hex[:8]}",
        worker_send_task_events=True,
    )
    lock, running, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    @app.task(name="resize.hold")
    def hold() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1

    hostname = f"resize-{uuid.uuid4().hex[:6]}@test"
    worker = run_worker(app, concurrency=2, hostname=hostname)
    try:
        reply = app.control.pool_shrink(1, destination=[hostname], reply=True, timeout=T)
        assert reply == {hostname: {"ok": "pool will shrink to 1"}}
        with EventReceiver(app) as receiver:
            first, second = hold.delay(), hold.delay()
            seen = collect(receiver.next, lambda _: running[0] >= 1, timeout=30)
            assert running[0] == 1
            # Both are held by the worker; only one runs and only one was announced started.
            for _ in range(20):  # drain what is already there, bounded
                event = receiver.next(timeout=0.05)
                if event is not None:
                    seen.append(event)
            received = [e for e in seen if e["type"] == "task-received"]
            started = {e["uuid"] for e in seen if e["type"] == "task-started"}
            assert len(started) == 1, seen
            assert peak[0] == 1 and received
            reply = app.control.pool_grow(2, destination=[hostname], reply=True, timeout=T)
            assert reply == {hostname: {"ok": "pool will grow to 3"}}
            third = hold.delay()
            eventually(lambda: running[0] == 3, 30, "three tasks running at once")
            assert peak[0] == 3
            release.set()
            for result in (first, second, third):
                result.get(timeout=30)
    finally:
        release.set()
        stop_worker(worker)
        app.close()
