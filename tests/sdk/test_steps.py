"""Users' steps in the per-message policy: before a job runs and after it ends."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.transports import open_transport
from celeriac.worker import Job, Outcome, Step, run_worker, stop_worker
from tests.waiting import eventually


class Quarantine(Step):
    """Refuses one task name; counts what it saw end."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def before(self, job: Job) -> Outcome | None:
        if job.name == "steps.banned":
            return Outcome("dead-letter", "quarantined: steps.banned is not run here", "FAILURE")
        return None

    def after(self, job: Job, outcome: Outcome) -> Outcome:
        with self.lock:
            self.ended.append((job.name, outcome.state))
        return outcome


class Broken(Step):
    def before(self, job: Job) -> Outcome | None:
        raise RuntimeError("a bug in a user's step")

    def after(self, job: Job, outcome: Outcome) -> Outcome:
        raise RuntimeError("another one")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(
        "steps",
        broker=f"memory://steps-{uuid.uuid4().hex[:8]}",
        backend=f"sqlite:///{tmp_path}/r.db",
        task_default_queue=f"steps.{uuid.uuid4().hex[:8]}",
    )

    @application.task(name="steps.add")
    def add(x: int, y: int) -> int:
        return x + y

    @application.task(name="steps.banned")
    def banned() -> str:
        raise AssertionError("a quarantined task ran")

    yield application
    application.close()


def test_a_step_refuses_a_job_and_sees_every_outcome(app: App) -> None:
    quarantine = Quarantine()
    w = run_worker(app, concurrency=2, steps=[Broken(), quarantine])
    try:
        assert app.send_task("steps.add", (2, 3)).get(timeout=30) == 5
        refused = app.send_task("steps.banned")
        transport = open_transport(app.conf.broker_url)

        def dead_lettered() -> str | None:
            for d in dlq.fetch(1, timeout=0.2):
                assert d.message is not None
                assert d.message.headers["id"] == refused.id
                return str(d.message.headers["x-celeriac-reject-reason"])
            return None

        with transport.consumer([f"{app.conf.task_default_queue}.dlq"], prefetch=10) as dlq:
            reason = eventually(dead_lettered, 10, "the refused task dead-lettered")
        transport.close()
        assert reason == "quarantined: steps.banned is not run here"
        eventually(lambda: len(quarantine.ended) >= 2, 10, "both outcomes seen by the step")
        assert sorted(quarantine.ended) == [("steps.add", "SUCCESS"), ("steps.banned", "FAILURE")]
        assert w.thread.is_alive()  # type: ignore[attr-defined]
    finally:
        stop_worker(w)
