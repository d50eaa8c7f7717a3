"""End to end: a client and a worker on each landed transport, results through the backend."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, chord, group
from celeriac.transports import open_transport
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import REDIS_URL
from tests.transports.conftest import url_for
from tests.waiting import eventually

E2E_TRANSPORTS = ("memory", "sqlite", "redis", "amqp", "sqs", "kafka", "zookeeper")


class Ledger:
    """What ran, counted per key, safe across worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, int] = {}

    def mark(self, key: object) -> int:
        with self.lock:
            name = str(key)
            self.runs[name] = self.runs.get(name, 0) + 1
            return self.runs[name]


@pytest.fixture(params=E2E_TRANSPORTS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    broker = url_for(str(request.param), tmp_path)
    backend = f"sqlite:///{tmp_path}/results.db"
    if request.param == "redis":
        backend = REDIS_URL.rsplit("/", 1)[0] + "/3"
    queue = f"e2e.{uuid.uuid4().hex[:8]}"
    application = App("e2e", broker=broker, backend=backend, task_default_queue=queue,
                      broker_transport_options={"visibility_timeout": 1})  # fmt: skip
    yield application
    application.close()


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def tasks(app: App, ledger: Ledger) -> dict[str, Any]:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    @app.task
    async def adouble(x: int) -> int:
        return 2 * x

    @app.task(bind=True, max_retries=5, default_retry_delay=0.05)
    def flaky(self: Any, key: str, failures: int) -> int:
        attempt = ledger.mark(key)
        if attempt <= failures:
            raise self.retry(exc=RuntimeError(f"attempt {attempt}"))
        return attempt

    @app.task(autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0.05)
    def always_down(key: str) -> None:
        ledger.mark(key)
        raise ConnectionError("down")

    @app.task
    def record(key: str) -> str:
        ledger.mark(key)
        return key

    @app.task
    def on_error(task_id: str) -> str:
        ledger.mark(f"errback:{task_id}")
        return task_id

    @app.task
    def fail() -> None:
        raise ValueError("boom")

    return {t.__name__: t for t in (add, tsum, adouble, flaky, always_down, record, on_error, fail)}


@pytest.fixture
def worker(app: App, tasks: dict[str, Any]) -> Iterator[Worker]:
    w = run_worker(app, concurrency=4)
    yield w
    stop_worker(w)


def test_delay_and_get(tasks: dict[str, Any], worker: Worker) -> None:
    assert tasks["add"].delay(2, 3).get(timeout=10) == 5


def test_async_task(tasks: dict[str, Any], worker: Worker) -> None:
    assert tasks["adouble"].delay(21).get(timeout=10) == 42


def test_retry_until_success(tasks: dict[str, Any], worker: Worker, ledger: Ledger) -> None:
    assert tasks["flaky"].delay("k", 2).get(timeout=10) == 3
    assert ledger.runs["k"] == 3


def test_autoretry_then_failure(tasks: dict[str, Any], worker: Worker, ledger: Ledger) -> None:
    result = tasks["always_down"].delay("down")
    with pytest.raises(ConnectionError):
        result.get(timeout=10)
    assert ledger.runs["down"] == 3  # the first run and two retries


def test_failure_runs_errback(tasks: dict[str, Any], worker: Worker, ledger: Ledger) -> None:
    result = tasks["fail"].apply_async(link_error=tasks["on_error"].s())
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=10)
    # The errback runs after the failure is stored.
    eventually(lambda: f"errback:{result.id}" in ledger.runs, 10, "the errback run")
    assert ledger.runs.get(f"errback:{result.id}") == 1


def test_countdown_waits(tasks: dict[str, Any], worker: Worker) -> None:
    sent = time.monotonic()
    result = tasks["add"].apply_async((1, 1), countdown=1.0)
    assert result.get(timeout=10) == 2
    assert time.monotonic() - sent >= 1.0


def test_eta_longer_than_visibility_timeout_runs_once(
    tasks: dict[str, Any], worker: Worker, ledger: Ledger
) -> None:
    eta = datetime.now(UTC) + timedelta(seconds=2.5)  # the transports' visibility timeout is 1 s
    assert tasks["record"].apply_async(("eta",), eta=eta).get(timeout=15) == "eta"
    assert datetime.now(UTC) >= eta
    assert ledger.runs["eta"] == 1


def test_expired_task_is_revoked(tasks: dict[str, Any], worker: Worker, ledger: Ledger) -> None:
    result = tasks["record"].apply_async(("late",), expires=datetime.now(UTC) - timedelta(1))
    with pytest.raises(Exception, match="expired"):
        result.get(timeout=10)
    assert result.state == "REVOKED" and "late" not in ledger.runs


def test_revoke_before_it_runs(tasks: dict[str, Any], worker: Worker, ledger: Ledger) -> None:
    # The countdown outlasts the revoke broadcast's way to the worker: SQS polls for it, and
    # under load 1.5 s was not always enough (the task ran before the revoke arrived).
    result = tasks["record"].apply_async(("revoked",), countdown=4)
    result.revoke()
    with pytest.raises(Exception, match="revoked"):
        result.get(timeout=15)
    assert "revoked" not in ledger.runs


def test_chain(tasks: dict[str, Any], worker: Worker) -> None:
    add = tasks["add"]
    assert (add.s(1, 2) | add.s(3) | add.s(4)).apply_async().get(timeout=10) == 10


def test_group(tasks: dict[str, Any], worker: Worker) -> None:
    add = tasks["add"]
    assert group(add.s(i, i) for i in range(5)).apply_async().get(timeout=10) == [0, 2, 4, 6, 8]


def test_chord(tasks: dict[str, Any], worker: Worker) -> None:
    add, tsum = tasks["add"], tasks["tsum"]
    assert chord([add.s(i, i) for i in range(4)], tsum.s()).apply_async().get(timeout=10) == 12


def test_link_callback(tasks: dict[str, Any], worker: Worker, ledger: Ledger) -> None:
    result = tasks["add"].apply_async((2, 2), link=tasks["record"].s())
    assert result.get(timeout=10) == 4
    eventually(lambda: "4" in ledger.runs, 10, "the callback run")  # a separate task
    assert ledger.runs == {"4": 1}


def test_unknown_task_is_dead_lettered(app: App, worker: Worker) -> None:
    result = app.send_task("e2e.nobody_has_this", (1,))
    with pytest.raises(Exception, match="nobody_has_this"):
        result.get(timeout=10)
    transport = open_transport(app.conf.broker_url)
    try:
        with transport.consumer([f"{app.conf.task_default_queue}.dlq"], prefetch=1) as dlq:
            got = dlq.fetch(1, timeout=5)
            assert got and got[0].message is not None
            assert "unknown-task" in got[0].message.headers["x-celeriac-reject-reason"]
            dlq.ack(got)
    finally:
        transport.close()


def test_warm_shutdown_loses_nothing(app: App, tasks: dict[str, Any], ledger: Ledger) -> None:
    results = [tasks["record"].delay(f"w{i}") for i in range(40)]
    first = run_worker(app, concurrency=2)
    # Let the first worker get going, then stop it mid-stream.
    eventually(lambda: len(ledger.runs) >= 5, 10, "five tasks run by the first worker")
    stop_worker(first)
    second = run_worker(app, concurrency=2)
    try:
        assert sorted(r.get(timeout=20) for r in results) == sorted(f"w{i}" for i in range(40))
    finally:
        stop_worker(second)
    assert all(ledger.runs[f"w{i}"] >= 1 for i in range(40))


def test_asyncio_pool_runs_many_at_once_with_their_own_request(app: App) -> None:
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()
    gate = threading.Event()

    @app.task(bind=True)
    async def wait_in_line(self: Any, n: int) -> str:
        import asyncio

        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            if state["now"] >= 30:
                gate.set()
        while not gate.is_set():  # hold every call until 30 are in flight together
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        with lock:
            state["now"] -= 1
        return str(self.request.id)

    w = run_worker(app, pool="asyncio", concurrency=100)
    try:
        results = [wait_in_line.delay(i) for i in range(30)]
        assert [r.get(timeout=20) for r in results] == [r.id for r in results]
    finally:
        stop_worker(w)
    assert state["peak"] >= 30


def test_soft_time_limit_raises_inside_the_task(app: App, ledger: Ledger) -> None:
    from celeriac.exceptions import SoftTimeLimitExceeded

    @app.task(soft_time_limit=0.3)
    def patient() -> str:
        try:
            while True:
                time.sleep(0.01)
        except SoftTimeLimitExceeded:
            ledger.mark("cleaned up")
            return "stopped in time"

    w = run_worker(app, concurrency=2)
    try:
        assert patient.delay().get(timeout=10) == "stopped in time"
    finally:
        stop_worker(w)
    assert ledger.runs["cleaned up"] == 1


def _stuck_task(app: App, release: threading.Event) -> Any:
    """A task with a 0.3 s hard limit that swallows the limit's exception until ``release``,
    as C code would."""

    @app.task(time_limit=0.3)
    def stuck() -> None:
        while not release.is_set():
            try:
                time.sleep(0.01)
            except BaseException:
                continue

    return stuck


def test_hard_time_limit_fails_the_task_and_frees_the_worker(
    app: App, tasks: dict[str, Any]
) -> None:
    from celeriac.exceptions import TimeLimitExceeded

    release = threading.Event()

    stuck = _stuck_task(app, release)

    w = run_worker(app, concurrency=2)
    try:
        with pytest.raises(TimeLimitExceeded):
            stuck.delay().get(timeout=10)
        assert tasks["add"].delay(1, 2).get(timeout=10) == 3  # the worker goes on
    finally:
        release.set()
        stop_worker(w)


def test_a_thread_abandoned_past_its_hard_limit_is_replaced(
    app: App, tasks: dict[str, Any]
) -> None:
    """With one thread, a task that never returns from its hard limit leaves the pool a
    thread short: another takes its place, and stopping the worker does not wait for it."""
    from celeriac.exceptions import TimeLimitExceeded

    release = threading.Event()

    stuck = _stuck_task(app, release)

    w = run_worker(app, concurrency=1)
    try:
        for _ in range(2):  # each abandons the thread that serves it
            with pytest.raises(TimeLimitExceeded):
                stuck.delay().get(timeout=10)
            assert tasks["add"].delay(1, 2).get(timeout=10) == 3
        stopping = threading.Thread(target=stop_worker, args=(w,))
        stopping.start()
        stopping.join(20)
        assert not stopping.is_alive(), "the worker waited for its abandoned threads"
    finally:
        release.set()
        stop_worker(w)


def test_revoke_with_terminate_stops_a_running_task(app: App, ledger: Ledger) -> None:
    from celeriac.exceptions import TaskRevokedError

    @app.task
    def forever(key: str) -> None:
        ledger.mark(key)
        while True:
            time.sleep(0.01)

    w = run_worker(app, concurrency=2)
    try:
        result = forever.delay("running")
        eventually(lambda: "running" in ledger.runs, 10, "the task running")
        result.revoke(terminate=True)
        with pytest.raises(TaskRevokedError):
            result.get(timeout=10)
        assert result.state == "REVOKED"
    finally:
        stop_worker(w)


def test_rate_limit_spaces_the_calls(app: App) -> None:
    starts: list[float] = []

    @app.task(rate_limit="10/s")
    def limited(n: int) -> int:
        starts.append(time.monotonic())
        return n

    w = run_worker(app, concurrency=8)
    try:
        assert sorted(r.get(timeout=20) for r in [limited.delay(i) for i in range(6)]) == list(
            range(6)
        )
    finally:
        stop_worker(w)
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.08, gaps  # 10 per second: about 0.1 s apart, never a burst


def test_global_rate_limit_holds_across_workers(app: App) -> None:
    starts: list[float] = []

    @app.task(global_rate_limit="5/s", name=f"e2e.shared_limit_{uuid.uuid4().hex[:8]}")
    def shared(n: int) -> int:
        starts.append(time.monotonic())
        return n

    workers = [run_worker(app, concurrency=4) for _ in range(2)]  # two workers, one limit
    try:
        results = [shared.delay(i) for i in range(6)]
        assert sorted(r.get(timeout=20) for r in results) == list(range(6))
    finally:
        for w in workers:
            stop_worker(w)
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.15, gaps  # 5 per second between both workers: about 0.2 s apart


def test_map_starmap_chunks(tasks: dict[str, Any], worker: Worker) -> None:
    add = tasks["add"]
    assert tasks["tsum"].map([[1, 2], [3]]).apply_async().get(timeout=10) == [3, 3]
    assert add.starmap([(1, 1), (2, 2)]).apply_async().get(timeout=10) == [2, 4]
    assert add.chunks([(i, i) for i in range(5)], 2).apply_async().get(timeout=10) == [
        [0, 2],
        [4, 6],
        [8],
    ]


def test_signals_fire_around_tasks(tasks: dict[str, Any], app: App) -> None:
    from celeriac import signals

    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(sender: Any, signal: Any, **kwargs: Any) -> None:
        with lock:
            # task_success has no task_id (as in Celery): the sender's request says it.
            seen.append((signal.name, kwargs.get("task_id") or sender.request.id))

    hooks = [signals.task_prerun, signals.task_postrun, signals.task_success, signals.task_failure]
    for hook in hooks:
        hook.connect(record)
    w = run_worker(app, concurrency=2)
    try:
        ok = tasks["add"].delay(1, 1)
        bad = tasks["fail"].delay()
        assert ok.get(timeout=10) == 2
        with pytest.raises(ValueError):
            bad.get(timeout=10)
    finally:
        stop_worker(w)
        for hook in hooks:
            hook.disconnect(record)
    assert ("task_prerun", ok.id) in seen and ("task_success", ok.id) in seen
    assert ("task_postrun", ok.id) in seen and ("task_failure", bad.id) in seen
