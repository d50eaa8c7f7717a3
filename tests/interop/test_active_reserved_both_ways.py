"""``inspect active`` and ``inspect reserved`` tell running tasks from prefetched ones, on a
Celery 5.7 worker and a Celeriac worker alike: with one slot and three long tasks, one is
active and two are reserved (Celery's prefetch), so Flower's runtimes are right."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from celeriac import App
from celeriac.worker import run_worker, stop_worker
from tests.brokers import REDIS_URL, require, unique
from tests.interop import tools_tasks
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

SECONDS = 6.0


def _inspect(app: App, hostname: str, what: str) -> list[dict[str, Any]]:
    replies = app.control.call(what, {}, destination=[hostname], timeout=5, limit=1)
    return list(replies.get(hostname) or [])


def _observe(app: App, hostname: str) -> dict[str, Any]:
    """Send three long tasks; once the worker holds all three, what active and reserved say."""
    sent = [app.send_task("tools.sleep", (SECONDS,)) for _ in range(3)]
    ids = {r.id for r in sent}

    def held() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        active, reserved = _inspect(app, hostname, "active"), _inspect(app, hostname, "reserved")
        if {t["id"] for t in active + reserved} == ids and active:
            return active, reserved
        return None

    active, reserved = eventually(held, 30, f"{hostname} holding the three tasks", interval=0.2)
    # The first sent runs; the others wait for the slot. Revoked, they never run.
    app.control.revoke([t["id"] for t in reserved], destination=[hostname])
    assert sent[0].get(timeout=60) == SECONDS
    return {"active": active, "reserved": reserved, "first": sent[0].id}


def _shape(entry: dict[str, Any]) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in entry.items()}


def test_prefetched_tasks_are_reserved_not_active_on_both_workers() -> None:
    require("redis")
    queue = unique("active-reserved")
    app = App("active-reserved", broker=REDIS_URL, backend=REDIS_URL, task_default_queue=queue)
    tools_tasks.register(app)
    celery_host = f"celery-ar-{uuid.uuid4().hex[:6]}@test"
    ours_host = f"celeriac-ar-{uuid.uuid4().hex[:6]}@test"
    try:
        with tools_tasks.celery_worker(
            REDIS_URL, queue, celery_host, "-P", "threads", "-c", "1",
            "--prefetch-multiplier", "4", backend=REDIS_URL,
        ):  # fmt: skip
            theirs = _observe(app, celery_host)
        worker = run_worker(app, concurrency=1, hostname=ours_host)
        try:
            ours = _observe(app, ours_host)
        finally:
            stop_worker(worker)
    finally:
        app.close()
    for seen in (theirs, ours):
        assert [t["id"] for t in seen["active"]] == [seen["first"]], seen
        assert len(seen["reserved"]) == 2, seen
        assert seen["active"][0]["time_start"] is not None
        assert all(t["time_start"] is None and t["worker_pid"] is None for t in seen["reserved"])
    # Field by field, by type (ids, times and pids differ by nature).
    assert _shape(ours["active"][0]) == _shape(theirs["active"][0])
    assert [_shape(t) for t in ours["reserved"]] == [_shape(t) for t in theirs["reserved"]]
