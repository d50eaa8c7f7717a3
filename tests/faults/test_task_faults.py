"""Tasks that misbehave, run by real worker processes on Redis, RabbitMQ, SQLite and ZooKeeper
(issue 17):
each ends in one stored FAILURE after at most ``worker_max_deliveries`` runs, and the next task
runs. A task that kills its whole worker every time is poison after exactly that many runs,
on a classic RabbitMQ queue too; a client that repeats ``delivery_tag`` loses nothing when the
worker is SIGKILLed mid-batch; a SIGKILLed prefork parent leaves no child.

No broker is restarted here: these tests share the brokers with everyone and disturb no one.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.transports import REJECT_REASON_HEADER, QueueSpec, Transport, open_transport
from celeriac.worker.boundary import MAX_DELAY, MAX_TIME_LIMIT
from tests.sdk.test_prefork import _children_of, _zombie
from tests.transports.conftest import inject_raw, url_for
from tests.waiting import eventually

from .scenarios import CELERIAC, REPO

pytestmark = pytest.mark.broker

TRANSPORTS = ("sqlite", "redis", "amqp", "zookeeper")
#: Transport options per broker: a short hold, so a killed worker's messages come back soon
#: (ZooKeeper has no visibility timeout: a claim lasts as long as the session).
OPTIONS = {"zookeeper": '{"session_timeout": 4}'}
MAX_DELIVERIES = 3


@dataclass
class Bench:
    """One test's broker, backend, queue, ledger and the worker processes it started."""

    transport: str
    broker: str
    work: Path
    options: str = '{"visibility_timeout": 2}'
    queue: str = field(default_factory=lambda: f"taskfaults.{uuid.uuid4().hex[:10]}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return f"sqlite:///{self.work}/results.db"

    @property
    def ledger(self) -> Path:
        return self.work / "ledger.db"

    def start(self, pool: str = "prefork", concurrency: int = 2) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CELERIAC_BROKER_URL": self.broker,
            "CELERIAC_RESULT_BACKEND": self.backend,
            "CELERIAC_TASK_DEFAULT_QUEUE": self.queue,
            "CELERIAC_WORKER_MAX_DELIVERIES": str(MAX_DELIVERIES),
            "CELERIAC_BROKER_TRANSPORT_OPTIONS": self.options,
            "FAULTS_LEDGER": str(self.ledger),
        }
        name = f"taskfaults-{uuid.uuid4().hex[:8]}@%h"
        with (self.work / "worker.log").open("ab") as log:
            proc = subprocess.Popen(
                [CELERIAC, "worker", "-A", "tests.faults.task_app:app", "-P", pool,
                 "-c", str(concurrency), "-n", name, "-l", "warning"],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def client(self) -> App:
        return App(
            "taskfaults-client",
            broker=self.broker,
            backend=self.backend,
            task_default_queue=self.queue,
            broker_transport_options=json.loads(self.options),
        )

    def runs(self, task_id: str) -> int:
        if not self.ledger.exists():
            return 0
        with sqlite3.connect(self.ledger, timeout=60) as db:
            try:
                row = db.execute("SELECT COUNT(*) FROM runs WHERE task_id = ?", (task_id,))
                return int(row.fetchone()[0])
            except sqlite3.OperationalError:
                return 0  # no task wrote yet

    def log(self) -> str:
        path = self.work / "worker.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture(params=TRANSPORTS)
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    name = str(request.param)
    b = Bench(name, url_for(name, tmp_path), tmp_path)
    b.options = OPTIONS.get(name, b.options)
    yield b
    b.stop()


def _publish(bench: Bench, task: str, task_id: str, **headers: Any) -> None:
    """A task message with ``headers`` as written, past any check a client makes."""
    base = encode_task(new_task_message(task, (), task_id=task_id))
    wire = WireMessage(
        base.body,
        base.content_type,
        base.content_encoding,
        {**base.headers, **headers},
        base.properties,
    )
    transport = open_transport(bench.broker, **json.loads(bench.options))
    try:
        transport.declare_queue(QueueSpec(bench.queue))
        transport.publish(bench.queue, wire)
    finally:
        transport.close()


def _wait_ready(client: App, ids: list[str], timeout: float, bench: Bench) -> None:
    def ready() -> bool:
        return all(client.AsyncResult(i).ready() for i in ids)

    try:
        eventually(ready, timeout, "every result stored", interval=0.2)
    except AssertionError:
        states = {i: client.AsyncResult(i).state for i in ids}
        raise AssertionError(f"results not all stored: {states}\n{bench.log()}") from None


def _dead_letters(bench: Bench, expected: int, timeout: float = 30) -> dict[str, str]:
    """Task id -> reason of the dead letters, once ``expected`` arrived (bounded wait)."""
    transport = open_transport(bench.broker)
    reasons: dict[str, str] = {}
    try:
        with transport.consumer([f"{bench.queue}.dlq"], prefetch=50) as dlq:
            deadline = time.monotonic() + timeout
            while len(reasons) < expected and time.monotonic() < deadline:
                got = dlq.fetch(10, timeout=0.5)
                for d in got:
                    assert d.message is not None
                    h = d.message.headers
                    reasons[str(h.get("id"))] = str(h.get(REJECT_REASON_HEADER))
                dlq.ack(got)
    finally:
        transport.close()
    return reasons


def _a_normal_task_runs(client: App) -> None:
    assert client.send_task("tf.ok", ("after",)).get(timeout=60) == "ok after"


def _exception_name(client: App, task_id: str) -> str:
    """The stored exception's type name (a type this process cannot import: as stored)."""
    exc = client.AsyncResult(task_id).result
    return str(getattr(exc, "exc_type", type(exc).__name__))


def test_misbehaving_tasks_each_end_in_one_failure(bench: Bench) -> None:
    """Unserialisable results, unprintable exceptions, and tasks that end their prefork child."""
    client = bench.client()
    bench.start(pool="prefork", concurrency=2)
    sent = {
        name: client.send_task(name).id
        for name in ("tf.unserialisable", "tf.bad_repr", "tf.exit", "tf.sigkill")
    }
    _wait_ready(client, list(sent.values()), 120, bench)
    for name, task_id in sent.items():
        assert client.AsyncResult(task_id).state == "FAILURE", name
    assert _exception_name(client, sent["tf.unserialisable"]) == "EncodeError"
    assert bench.runs(sent["tf.unserialisable"]) == 1
    assert bench.runs(sent["tf.bad_repr"]) == 1
    # Its message stored as FAILURE, though the exception cannot be printed.
    assert client.AsyncResult(sent["tf.bad_repr"]).traceback
    for name in ("tf.exit", "tf.sigkill"):
        # The child died: given back (counted) until worker_max_deliveries calls it poison.
        assert _exception_name(client, sent[name]) == "WorkerLostError", name
        assert 1 <= bench.runs(sent[name]) <= MAX_DELIVERIES, name
    _a_normal_task_runs(client)
    assert all(p.poll() is None for p in bench.procs), bench.log()
    client.close()


def _eta(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_limits_at_and_past_their_ranges(bench: Bench) -> None:
    """Time limits, ETAs (countdowns) and rate limits at the end of their ranges are honoured
    (run, or parked); past it each refuses its own message with a FAILURE, and only that one."""
    client = bench.client()
    bench.start(pool="prefork", concurrency=2)
    ids = {case: str(uuid.uuid4()) for case in (
        "time-limit-at-the-end", "time-limit-past", "soft-limit-past", "eta-past",
        "eta-long-due", "eta-at-the-end")}  # fmt: skip
    _publish(bench, "tf.ok", ids["time-limit-at-the-end"], timelimit=[None, MAX_TIME_LIMIT])
    _publish(bench, "tf.ok", ids["time-limit-past"], timelimit=[MAX_TIME_LIMIT * 10, None])
    _publish(bench, "tf.ok", ids["soft-limit-past"], timelimit=[None, 1e300])
    _publish(bench, "tf.ok", ids["eta-past"], eta=_eta(MAX_DELAY + 86_400))
    _publish(bench, "tf.ok", ids["eta-long-due"], eta="0001-01-01T00:00:00+00:00")
    _publish(bench, "tf.ok", ids["eta-at-the-end"], eta=_eta(MAX_DELAY - 86_400))
    rate_ok = client.send_task("tf.rate_at_the_end").id
    rate_bad = client.send_task("tf.rate_past_the_end").id
    ran = ["time-limit-at-the-end", "eta-long-due"]
    refused = ["time-limit-past", "soft-limit-past", "eta-past"]
    _wait_ready(client, [ids[c] for c in ran + refused] + [rate_ok, rate_bad], 60, bench)
    for case in ran:
        assert client.AsyncResult(ids[case]).state == "SUCCESS", case
        assert bench.runs(ids[case]) == 1, case
    assert client.AsyncResult(rate_ok).get(timeout=5) == "ran"
    for task_id in [ids[c] for c in refused] + [rate_bad]:
        assert client.AsyncResult(task_id).state == "FAILURE"
        assert bench.runs(task_id) == 0
    reasons = _dead_letters(bench, 4)
    assert {ids[c] for c in refused} | {rate_bad} == set(reasons), reasons
    assert all(r.startswith("limit-out-of-range: ") for r in reasons.values()), reasons
    # Ten years ahead, less a day: parked for its time (at the broker), neither run nor refused.
    assert client.AsyncResult(ids["eta-at-the-end"]).state == "PENDING"
    assert bench.runs(ids["eta-at-the-end"]) == 0
    _a_normal_task_runs(client)
    assert all(p.poll() is None for p in bench.procs), bench.log()
    client.close()


def test_a_task_that_kills_its_worker_is_poison_after_max_deliveries(bench: Bench) -> None:
    """The task SIGKILLs the whole worker (threads pool) each time it runs; a new worker is
    started after each death. On a classic RabbitMQ queue, which only flags redeliveries, the
    worker counts them itself (a counted copy goes to the back of the queue); on ZooKeeper the
    killed worker's claim ends with its session, and a persistent count node keeps the count."""
    _killed_until_poison(bench)


def test_a_task_that_kills_its_worker_is_poison_on_a_quorum_queue(tmp_path: Path) -> None:
    """RabbitMQ counts deliveries on a quorum queue itself; the worker adds nothing."""
    options = '{"visibility_timeout": 2, "queue_type": "quorum"}'
    bench = Bench("amqp", url_for("amqp", tmp_path), tmp_path, options=options)
    try:
        _killed_until_poison(bench)
    finally:
        bench.stop()


def test_a_task_that_kills_its_worker_is_poison_on_kafka(tmp_path: Path) -> None:
    """Kafka gives a dead worker's records back by offset, flagged and not counted: the worker
    counts them as on a classic RabbitMQ queue."""
    bench = Bench("kafka", url_for("kafka", tmp_path), tmp_path, options="{}")
    try:
        _killed_until_poison(bench)
    finally:
        bench.stop()


def _killed_until_poison(bench: Bench) -> None:
    client = bench.client()
    task_id = client.send_task("tf.sigkill").id
    result = client.AsyncResult(task_id)
    for _ in range(MAX_DELIVERIES + 2):  # bounded: poison must come within the limit
        proc = bench.start(pool="threads", concurrency=1)
        eventually(
            lambda p=proc: p.poll() is not None or result.ready(),  # type: ignore[misc]
            60,
            "the worker's death or the task's end",
            interval=0.1,
        )
        if result.ready():
            break
        assert proc.returncode == -signal.SIGKILL, bench.log()
    assert result.state == "FAILURE", bench.log()
    assert _exception_name(client, task_id) == "WorkerLostError"
    assert bench.runs(task_id) == MAX_DELIVERIES
    reasons = _dead_letters(bench, 1)
    assert reasons[task_id].startswith(f"poison: delivered {MAX_DELIVERIES + 1} times"), reasons
    _a_normal_task_runs(client)
    client.close()


TAG = "one-tag-for-all"


def _same_tag_batch(bench: Bench, count: int, seconds: float) -> list[str]:
    """``count`` tf.busy messages that all carry one ``delivery_tag``, written as stored."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    transport: Transport = open_transport(bench.broker, **json.loads(bench.options))
    try:
        transport.declare_queue(QueueSpec(bench.queue))
        for task_id in ids:
            wire = encode_task(new_task_message("tf.busy", (seconds,), task_id=task_id))
            if bench.transport == "amqp":  # no such envelope field: a property, ignored
                props = {**wire.properties, "delivery_tag": TAG}
                wire = WireMessage(
                    wire.body, wire.content_type, wire.content_encoding, wire.headers, props
                )
                transport.publish(bench.queue, wire)
            else:
                raw = json_envelope.pack_wire(wire, routing_key=bench.queue, delivery_tag=TAG)
                inject_raw(bench.transport, bench.broker, bench.queue, raw)
    finally:
        transport.close()
    return ids


def test_a_repeated_delivery_tag_loses_nothing_when_the_worker_is_sigkilled(
    bench: Bench,
) -> None:
    client = bench.client()
    ids = _same_tag_batch(bench, 8, seconds=1.5)
    first = bench.start(pool="threads", concurrency=4)  # holds the whole batch (prefetch 16)
    eventually(lambda: sum(bench.runs(i) for i in ids) >= 2, 60, "the batch started")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert not any(client.AsyncResult(i).ready() for i in ids[4:])  # killed mid-batch
    bench.start(pool="threads", concurrency=4)
    _wait_ready(client, ids, 120, bench)
    assert all(client.AsyncResult(i).state == "SUCCESS" for i in ids)
    assert all(bench.runs(i) >= 1 for i in ids)
    client.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_sigkill_of_a_prefork_parent_leaves_no_child(bench: Bench) -> None:
    client = bench.client()
    parent = bench.start(pool="prefork", concurrency=3)
    for _ in range(3):
        client.send_task("tf.pid", (60,))

    def three_running() -> set[int]:
        with sqlite3.connect(bench.ledger, timeout=60) as db:
            try:
                found = {r[0] for r in db.execute("SELECT pid FROM runs WHERE what = 'pid'")}
            except sqlite3.OperationalError:
                return set()  # no task wrote yet
        return found if len(found) == 3 else set()

    pids = eventually(three_running, 60, "three busy children")
    assert pids <= _children_of(parent.pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    eventually(
        lambda: not {p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)},
        10,
        "every child gone",
    )
    client.close()
