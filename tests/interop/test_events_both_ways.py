"""Events between real Celery 5.7 and Celeriac, on Redis and RabbitMQ: a Celeriac receiver (what
``celeriac events`` and the dashboard read) sees a Celery worker's events, and ``celery events``
sees a Celeriac worker's."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from celeriac import App
from celeriac.events import EventReceiver
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import unique
from tests.waiting import collect

pytestmark = [pytest.mark.celery, pytest.mark.broker]


def test_celeriac_receiver_sees_a_celery_workers_events(broker: str) -> None:
    work_queue = unique("celery-events")
    hostname = f"celery-{uuid.uuid4().hex[:6]}@test"
    app = App("events-reader", broker=broker, backend=None, task_default_queue=work_queue)
    try:
        with (
            EventReceiver(app) as receiver,
            celery_env.e2e_worker(broker, work_queue, hostname, extra_args=["-E"]),
        ):
            sent = app.send_task("e2e.add", (2, 3))

            def done(seen: list[dict[str, Any]]) -> bool:
                return any(e["type"] == "task-succeeded" and e.get("uuid") == sent.id for e in seen)

            events = collect(receiver.next, done, 60)
    finally:
        app.close()
    # (The harness runs Celery --without-heartbeat, so its worker events are off.)
    task = [e for e in events if e.get("hostname") == hostname and e.get("uuid") == sent.id]
    assert [e["type"] for e in task][-1] == "task-succeeded", task
    assert "task-received" in {e["type"] for e in task}
    succeeded = task[-1]
    assert succeeded["result"] == "5" and succeeded["runtime"] >= 0


def test_celery_events_sees_a_celeriac_workers_events(broker: str) -> None:
    hostname = f"celeriac-{uuid.uuid4().hex[:6]}@test"
    app = App(
        "events-writer",
        broker=broker,
        backend=None,
        task_default_queue=unique("celeriac-events"),
        worker_send_task_events=True,
    )

    @app.task(name="ev.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    python = str(celery_env.ensure(quiet=True))
    dump = subprocess.Popen(
        [python, "-m", "celery", "-b", broker, "events", "--dump"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=celery_env._clean_env(None),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in dump.stdout or ()], daemon=True).start()
    seen: list[str] = []

    def wait_for(predicate: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"celery events printed no such line in {timeout} s: {seen[-20:]}")

    worker = None
    try:
        wait_for(lambda line: "Dumping events" in line or "-> evdump" in line)
        worker = run_worker(app, concurrency=1, hostname=hostname)
        # Kombu subscribes on Redis only once it drains, maybe after our worker-online: the first
        # of our events it prints (a heartbeat at the latest) shows it is listening.
        first = wait_for(lambda line: hostname in line)
        assert "] started:" in first or "] heartbeat:" in first, first
        sent = mul.delay(6, 7)
        line = wait_for(lambda line: sent.id in line and "succeeded" in line)
        assert "42" in line
    finally:
        if worker is not None:
            stop_worker(worker)
        dump.terminate()
        dump.wait(20)
        app.close()
