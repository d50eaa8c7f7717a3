"""The dashboard watching a real Celery 5.7 worker on Redis: its events (Celery's own field names)
fill the model, and a revoke sent by the dashboard stops a task the Celery worker holds."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from celeriac import App
from celeriac.dashboard import Dashboard
from interop import celery_env
from tests.brokers import REDIS_URL, require, unique
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

E2E_DIR = Path(__file__).resolve().parents[2] / "interop" / "e2e"


def test_dashboard_follows_and_steers_a_celery_worker() -> None:
    require("redis")
    celery_env.ensure(quiet=True)
    queue = unique("dashboard-celery")
    hostname = f"celery-{uuid.uuid4().hex[:6]}@test"
    watcher = App("dashboard", broker=REDIS_URL, backend="")
    board = Dashboard(watcher, queues=[queue], reply_timeout=5.0)
    # ETA tasks go out at once, as Celery clients send them, so the Celery worker holds them.
    client = App(
        "client", broker=REDIS_URL, backend="", task_default_queue=queue, task_eta_in_broker=False
    )
    board.start()
    try:
        with celery_env.e2e_worker(REDIS_URL, queue, hostname, extra_args=["-E"]) as worker:
            ok = client.send_task("e2e.add", (2, 3))
            bad = client.send_task("e2e.fail", ("boom",))
            held = client.send_task("e2e.add", (4, 4), countdown=6)

            def state_of(task_id: str) -> str | None:
                found = board.state.task(task_id)
                return None if found is None else found["state"]

            eventually(lambda: state_of(ok.id) == "SUCCESS", 30, f"success\n{worker.log()}")
            eventually(lambda: state_of(bad.id) == "FAILURE", 30, "failure")
            eventually(lambda: state_of(held.id) == "RECEIVED", 30, "the ETA task held")
            done, failed = board.state.task(ok.id), board.state.task(bad.id)
            assert done is not None and failed is not None
            assert done["name"] == "e2e.add" and done["args"] == "(2, 3)"
            assert done["worker"] == hostname and done["result"] == "5"
            assert done["runtime"] is not None and done["runtime"] >= 0
            assert "boom" in (failed["exception"] or "")
            assert "ValueError" in (failed["traceback"] or "")  # Celery sends the traceback
            assert hostname in board.state.workers

            replies = board.revoke(held.id)
            assert hostname in replies, replies
            eventually(lambda: state_of(held.id) == "REVOKED", 30, "the revoke from the dashboard")
    finally:
        board.stop()
        watcher.close()
        client.close()
