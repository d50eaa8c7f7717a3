"""Signals the worker core and pools send with Celery's arguments: ``task_received`` (the
request), ``task_rejected`` (a message that cannot be decoded), ``task_unknown``,
``task_revoked`` for an expired task, ``worker_before_create_process`` in the parent and
``worker_process_init``/``worker_process_shutdown`` in each prefork child, and
``heartbeat_sent``."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, signals
from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.transports import open_transport
from celeriac.worker import run_worker, stop_worker


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(
        "wsig",
        broker=f"sqlite:///{tmp_path}/b.db",
        backend=f"sqlite:///{tmp_path}/r.db",
        task_default_queue=f"wsig.{uuid.uuid4().hex[:8]}",
    )

    @application.task(name="wsig.pid")
    def pid() -> int:
        return os.getpid()

    yield application
    application.close()


class Seen:
    """Receivers' calls, waited for with a bound."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.changed = threading.Condition()

    def __call__(self, sender: Any = None, signal: Any = None, **kwargs: Any) -> None:
        with self.changed:
            self.calls.append((signal.name, sender, kwargs))
            self.changed.notify_all()

    def wait_for(self, name: str, timeout: float = 15) -> dict[str, Any]:
        with self.changed:
            self.changed.wait_for(lambda: any(c[0] == name for c in self.calls), timeout)
        found = [kwargs for signal, _, kwargs in self.calls if signal == name]
        assert found, f"{name} not sent; got {[c[0] for c in self.calls]}"
        return found[0]


@pytest.fixture
def seen() -> Iterator[Seen]:
    receiver = Seen()
    wanted = (
        signals.task_received,
        signals.task_rejected,
        signals.task_unknown,
        signals.task_revoked,
    )
    for sig in wanted:
        sig.connect(receiver)
    yield receiver
    for sig in wanted:
        sig.disconnect(receiver)


def test_task_received_gets_the_request(app: App, seen: Seen) -> None:
    worker = run_worker(app, concurrency=1)
    try:
        result = app.tasks["wsig.pid"].delay()
        assert result.get(timeout=10) == os.getpid()
    finally:
        stop_worker(worker)
    request = seen.wait_for("task_received")["request"]
    assert (request.id, request.name, request.hostname) == (result.id, "wsig.pid", worker.hostname)
    assert request.task is app.tasks["wsig.pid"]  # the task that runs it, as Celery's Request


def test_rejected_unknown_and_expired_messages_are_signalled(app: App, seen: Seen) -> None:
    queue = app.conf.task_default_queue
    base = encode_task(new_task_message("wsig.pid", (), task_id="bad-content"))
    undecodable = WireMessage(b"\x00", "application/x-unknown", "binary", base.headers, {})
    worker = run_worker(app, concurrency=1)
    try:
        transport = open_transport(app.conf.broker_url)
        try:
            transport.publish(queue, undecodable)
        finally:
            transport.close()
        app.send_task("wsig.nobody", task_id="unknown-one")
        expired = app.send_task("wsig.pid", expires=datetime.now(UTC) - timedelta(seconds=5))
        rejected = seen.wait_for("task_rejected")
        unknown = seen.wait_for("task_unknown")
        revoked = seen.wait_for("task_revoked")
    finally:
        stop_worker(worker)
    assert rejected["message"].content_type == "application/x-unknown"
    assert rejected["exc"] is not None
    assert (unknown["name"], unknown["id"]) == ("wsig.nobody", "unknown-one")
    assert isinstance(unknown["exc"], KeyError)
    assert revoked["request"].id == expired.id
    assert (revoked["expired"], revoked["terminated"], revoked["signum"]) == (True, False, None)


def test_each_prefork_child_sends_process_init_and_shutdown(app: App, tmp_path: Path) -> None:
    ledger = tmp_path / "children.txt"

    def started(**_: Any) -> None:
        with ledger.open("a") as f:
            f.write(f"init {os.getpid()}\n")

    def ended(pid: int = 0, exitcode: int = -1, **_: Any) -> None:
        with ledger.open("a") as f:
            f.write(f"shutdown {pid} {exitcode}\n")

    def creating(**_: Any) -> None:
        with ledger.open("a") as f:
            f.write(f"before create in {os.getpid()}\n")

    signals.worker_before_create_process.connect(creating)
    signals.worker_process_init.connect(started)
    signals.worker_process_shutdown.connect(ended)
    try:
        worker = run_worker(app, pool="prefork", concurrency=1)
        try:
            child = app.tasks["wsig.pid"].delay().get(timeout=20)
        finally:
            stop_worker(worker)
    finally:
        signals.worker_before_create_process.disconnect(creating)
        signals.worker_process_init.disconnect(started)
        signals.worker_process_shutdown.disconnect(ended)
    lines = ledger.read_text().splitlines()  # the children are gone: their lines are written
    assert child != os.getpid()
    assert lines[0] == f"before create in {os.getpid()}"  # in the parent, before the child
    assert f"init {child}" in lines
    assert f"shutdown {child} 0" in lines


def test_heartbeat_sent_with_each_heartbeat(app: App) -> None:
    beats = threading.Event()

    def beat(sender: Any = None, **_: Any) -> None:
        beats.set()

    signals.heartbeat_sent.connect(beat)
    try:
        app.conf.update(worker_send_task_events=True)  # Celeriac's worker beats only with -E
        worker = run_worker(app, concurrency=1)
        try:
            assert beats.wait(15)
        finally:
            stop_worker(worker)
    finally:
        signals.heartbeat_sent.disconnect(beat)


def test_a_hard_time_limit_calls_on_failure_after_return_and_task_failure(app: App) -> None:
    from celeriac import Task
    from celeriac.exceptions import TimeLimitExceeded

    calls: list[str] = []
    release = threading.Event()

    class Hooked(Task):  # type: ignore[type-arg]
        def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            calls.append(f"on_failure {type(exc).__name__} {type(einfo.exception).__name__}")

        def after_return(self, status: str, retval: Any, *rest: Any) -> None:
            calls.append(f"after_return {status} {type(retval).__name__}")

    @app.task(base=Hooked, name="wsig.stuck", time_limit=0.3)
    def stuck() -> None:
        release.wait(30)

    reported = threading.Event()

    def failed(sender: Any = None, exception: Any = None, einfo: Any = None, **_: Any) -> None:
        calls.append(f"task_failure {sender.name} {type(exception).__name__}")
        reported.set()

    signals.task_failure.connect(failed)
    try:
        worker = run_worker(app, concurrency=1)
        try:
            with pytest.raises(TimeLimitExceeded):
                stuck.delay().get(timeout=20)
            assert reported.wait(10)  # the hooks and signal follow the stored failure
        finally:
            release.set()
            stop_worker(worker)
    finally:
        signals.task_failure.disconnect(failed)
    assert calls[:3] == [  # Celery's order for a hard time limit
        "on_failure TimeLimitExceeded TimeLimitExceeded",
        "after_return FAILURE TimeLimitExceeded",
        "task_failure wsig.stuck TimeLimitExceeded",
    ]
