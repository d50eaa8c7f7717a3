"""A real Celery 5.7 client reads the failures a Celeriac worker stored and gets Celery's classes.

SPEC.md §7.3: records name ``celery.exceptions`` for the exceptions Celery defines, so Celery's
``exception_to_python`` rebuilds ``celery.exceptions.NotRegistered`` (not a look-alike) and
``isinstance`` holds.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from celeriac import App
from celeriac.exceptions import SoftTimeLimitExceeded, WorkerLostError
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import REDIS_URL, require, unique
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

READER = Path(__file__).with_name("celery_exception_reader.py")


def _backend() -> str:
    return REDIS_URL.rsplit("/", 1)[0] + "/1"


def test_celery_client_gets_celery_exception_classes() -> None:
    require("redis")
    celery_env.ensure(quiet=True)
    queue = unique("celeriac-exc")
    app = App("exc-source", broker=REDIS_URL, backend=_backend(), task_default_queue=queue)

    @app.task(name="exc.soft", soft_time_limit=0.3)
    def soft() -> None:
        stop = threading.Event()
        for _ in range(200):  # work the soft limit interrupts
            stop.wait(0.05)

    @app.task(name="exc.hard", time_limit=0.5)
    def hard() -> None:
        stop = threading.Event()
        for _ in range(100):
            try:
                stop.wait(0.05)
            except SoftTimeLimitExceeded:
                pass

    @app.task(name="exc.lost")
    def lost() -> None:
        raise WorkerLostError("worker exited prematurely")

    @app.task(name="exc.retry", bind=True)
    def retry(self: Any) -> None:
        raise self.retry(countdown=300, max_retries=1)

    worker = run_worker(app, concurrency=4)
    sent: list[dict[str, str]] = []
    try:

        def send(name: str, state: str, cls: str, **options: Any) -> None:
            res = app.send_task(name, (), queue=queue, **options)
            sent.append({"id": res.id, "state": state, "class": cls})

        send("exc.not_there", "FAILURE", "NotRegistered")
        send("exc.lost", "REVOKED", "TaskRevokedError", expires=datetime.now(UTC) - timedelta(1))
        send("exc.soft", "FAILURE", "SoftTimeLimitExceeded")
        send("exc.hard", "FAILURE", "TimeLimitExceeded")
        send("exc.lost", "FAILURE", "WorkerLostError")
        send("exc.retry", "RETRY", "Retry")
        r = redis.Redis.from_url(_backend())
        try:
            eventually(
                lambda: all(r.exists(f"celery-task-meta-{c['id']}") for c in sent),
                timeout=30,
                what="the worker stored every record",
            )
            stored = {c["id"]: json.loads(r.get(f"celery-task-meta-{c['id']}")) for c in sent}
        finally:
            r.close()
        proc = celery_env.run_script(READER, _backend(), json.dumps(sent), timeout=120)
    finally:
        stop_worker(worker)
        app.close()
        cleanup = redis.Redis.from_url(REDIS_URL)
        cleanup.delete(queue, f"{queue}.dlq")
        cleanup.close()
    for case in sent:
        assert stored[case["id"]]["result"]["exc_module"] == "celery.exceptions", case
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    got = {line["id"]: line for line in lines}
    for case in sent:
        line = got[case["id"]]
        assert line["state"] == case["state"], (case, line)
        assert line["isinstance"], f"Celery rebuilt {line['class']} for {case['class']}"


def test_the_worker_role_verifier_passes_a_celeriac_worker() -> None:
    """Including result.exception: a REVOKED record names celery.exceptions (§7.3)."""
    from celeriac.interop import verify_worker
    from tests.interop.test_matrix import conformance_app

    require("redis")
    queue = unique("celeriac-verified")
    app = conformance_app(REDIS_URL, queue)
    worker = run_worker(app, concurrency=4)
    try:
        report = verify_worker(REDIS_URL, _backend(), queue, timeout=30)
    finally:
        stop_worker(worker)
        app.close()
    assert not report.failed(), [(o.case, o.check, o.reason) for o in report.failed()]
    checked = {o.case: o.status for o in report.outcomes if o.check == "result.exception"}
    assert checked == {"expired": "pass", "fail": "pass"}
