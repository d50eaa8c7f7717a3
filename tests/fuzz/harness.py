"""The fuzzers' shared harness: a real worker on a broker, a ledger of what ran, a reader of
the dead-letter queue, and the invariants each example and each run must keep."""

from __future__ import annotations

import os
import re
import resource
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeriac import App
from celeriac.transports import Consumer, Transport, TransportError, open_transport
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import REDIS_URL
from tests.fuzz.strategies import Hostile, hostile_messages
from tests.transports.conftest import url_for
from tests.waiting import eventually

BUDGET = int(os.environ.get("CELERIAC_FUZZ_EXAMPLES", "300"))
RANDOM = bool(os.environ.get("CELERIAC_FUZZ_RANDOM"))
MAX_DELIVERIES = 3
_REASON = re.compile(r"^[a-z-]+: .")
#: Tasks the harness registers: nothing a client invents may be kept per name.
HARNESS_TASKS = {"fz.ok", "fz.fail", "fz.probe"}


def budget(share: float, least: int = 10) -> int:
    """A share of ``CELERIAC_FUZZ_EXAMPLES`` (at least ``least``): each fuzzer's examples."""
    return max(int(BUDGET * share), least)


class Harness:
    """A worker, a ledger of what ran, and a reader of the dead-letter queue."""

    def __init__(self, app: App, worker: Worker) -> None:
        self.app = app
        self.worker = worker
        self.queue = app.conf.task_default_queue
        self.runs: dict[str, int] = {}
        self.lock = threading.Lock()
        self.dead: dict[str | None, list[str]] = {}
        self.transport: Transport = open_transport(app.conf.broker_url)
        self.dlq: Consumer = self.transport.consumer([f"{self.queue}.dlq"], prefetch=100)
        self.rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        #: How the examples ended, so a run that exercised nothing fails.
        self.seen: dict[str, int] = {}

    def ran(self, task_id: str) -> None:
        with self.lock:
            self.runs[task_id] = self.runs.get(task_id, 0) + 1

    def read_dead_letters(self) -> None:
        got = self.dlq.fetch(100, timeout=0)
        for d in got:
            assert d.message is not None, d.error
            h = d.message.headers
            task_id = h.get("id") if isinstance(h.get("id"), str) else None
            self.dead.setdefault(task_id, []).append(str(h.get("x-celeriac-reject-reason")))
        if got:
            self.dlq.ack(got)

    def idle(self) -> bool:
        w = self.worker
        return not w.active and not w.waiting and self.transport.queue_length(self.queue) == 0

    def close(self) -> None:
        self.dlq.close()
        self.transport.close()


def _app(broker: str, backend: str) -> App:
    return App(
        "fuzz",
        broker=broker,
        backend=backend,
        task_default_queue=f"fuzz.{uuid.uuid4().hex[:8]}",
        worker_max_deliveries=MAX_DELIVERIES,
        broker_transport_options={"visibility_timeout": 5},
    )


def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    name = str(request.param)
    backend = f"sqlite:///{tmp_path}/results.db"
    if name == "redis":
        backend = REDIS_URL.rsplit("/", 1)[0] + "/3"
    app = _app(url_for(name, tmp_path), backend)
    holder: list[Harness] = []

    @app.task(name="fz.ok", bind=True)
    def ok(self: Any, *args: Any, **kwargs: Any) -> None:
        holder[0].ran(str(self.request.id))

    @app.task(name="fz.fail", bind=True)
    def fail(self: Any, *args: Any, **kwargs: Any) -> None:
        holder[0].ran(str(self.request.id))
        raise ValueError("fz.fail fails")  # its errbacks follow

    @app.task(name="fz.probe")
    def probe() -> str:
        return "alive"

    app.declare(app.conf.task_default_queue)
    worker = run_worker(app, concurrency=2, hostname=f"fuzz-{uuid.uuid4().hex[:6]}@test")
    harness = Harness(app, worker)
    holder.append(harness)
    yield harness
    stop_worker(worker)
    harness.close()
    app.close()


def check_one(h: Harness, hostile: Hostile) -> None:
    before = dict(h.runs)
    try:
        h.transport.publish(h.queue, hostile.wire)
    except (TransportError, ValueError, TypeError, OverflowError):
        h.seen["unsendable"] = h.seen.get("unsendable", 0) + 1
        return  # the client side refused to send it (headers it cannot encode): no message
    task_id = hostile.task_id

    def settled_now() -> bool:
        h.read_dead_letters()
        ran = h.runs.get(task_id or "", 0) - before.get(task_id or "", 0)
        dead = h.dead.get(task_id, []) if task_id else []
        # Ended without running to the end: revoked, expired, or stopped by a tiny time limit.
        ended = task_id is not None and not ran and not dead and _ended(h, task_id)
        return bool(dead or ran or ended or task_id is None) and h.idle()

    try:
        settled = eventually(settled_now, 10, "settled", interval=0.01)
    except AssertionError:
        settled = False  # parked for its ETA, or not settled: told apart below
    assert h.worker.thread.is_alive(), "the worker died"  # type: ignore[attr-defined]
    h.read_dead_letters()
    if task_id is None:
        h.seen["no-id"] = h.seen.get("no-id", 0) + 1
        return  # no id to follow: its dead letter's reason is checked at the end
    ran = h.runs.get(task_id, 0) - before.get(task_id, 0)
    dead = h.dead.get(task_id, [])
    assert len(dead) <= 1, f"dead-lettered {len(dead)} times: {dead}"
    assert all(_REASON.match(r) for r in dead), dead
    assert ran <= MAX_DELIVERIES, f"ran {ran} times"
    if not settled:
        assert hostile.may_park, f"not settled within 10 s: {hostile.wire.headers}"
    kind = "dead" if dead else "ran" if ran else "parked" if not settled else "ended"
    h.seen[kind] = h.seen.get(kind, 0) + 1


def _ended(h: Harness, task_id: str) -> bool:
    try:
        return h.app.AsyncResult(task_id).state in ("REVOKED", "FAILURE", "SUCCESS")
    except Exception:
        return False


def final_checks(h: Harness, examples: int) -> None:
    print(f"fuzz outcomes ({examples} examples): {h.seen}")
    if examples >= 20:  # the strategies reach both ends: runs and refusals
        assert h.seen.get("ran", 0) > 0 and h.seen.get("dead", 0) > 0, h.seen
    assert h.app.send_task("fz.probe").get(timeout=30) == "alive"
    w = h.worker
    # Names a client invents are not kept (Celery's built-ins, ``celery.chord`` and the like,
    # are registered on every app, so a fuzzed signature may run them).
    registered = HARNESS_TASKS | set(h.app.tasks)
    assert set(w.totals) <= registered
    assert set(w.buckets) <= registered
    assert all(_REASON.match(r) for reasons in h.dead.values() for r in reasons)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - h.rss) / 1024
    assert grown_mib < 300, f"peak memory grew by {grown_mib:.0f} MiB"


def fuzz(
    h: Harness,
    examples: int,
    messages: Callable[[], st.SearchStrategy[Hostile]] = hostile_messages,
) -> None:
    """Send ``examples`` drawn messages through ``h``'s worker, checking each, then the run."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile=messages())
    def run(hostile: Hostile) -> None:
        check_one(h, hostile)

    run()
    final_checks(h, examples)
