"""Attacks on the worker loop, each once a way to stop a worker or loop a task forever: every
one now ends with the message settled once (ran, stored as FAILURE, dead-lettered with a
reason), and the worker alive and running the next task (SPEC.md §11)."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.exceptions import Reject
from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.transports import open_transport
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import REDIS_URL, amqp_vhost, redis_db
from tests.transports.conftest import url_for
from tests.waiting import eventually

BOUNDARY_TRANSPORTS = ("memory", "sqlite", "redis", "amqp")


class Runs:
    """How many times each key ran, across worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def mark(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1


class BadRepr(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


@functools.cache
def _own_broker(name: str) -> str:
    """A broker of this file's own on the shared servers: remote commands and broadcasts from
    other test runs (a revoke sent to every worker) never reach the worker under test."""
    return redis_db(14) if name == "redis" else amqp_vhost("celeriac-hostile")


@pytest.fixture(params=BOUNDARY_TRANSPORTS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    backend = f"sqlite:///{tmp_path}/results.db"
    broker = url_for(str(request.param), tmp_path)
    if request.param == "redis":
        backend = REDIS_URL.rsplit("/", 1)[0] + "/3"
    if request.param in ("redis", "amqp"):
        broker = _own_broker(str(request.param))
    application = App(
        "boundary",
        broker=broker,
        backend=backend,
        task_default_queue=f"boundary.{uuid.uuid4().hex[:8]}",
        worker_max_deliveries=3,
        broker_transport_options={"visibility_timeout": 2},
    )
    runs = Runs()

    @application.task(name="b.ok")
    def ok(x: object = None) -> str:
        runs.mark("ok")
        return f"ok {x}"

    @application.task(name="b.unserialisable")
    def unserialisable() -> object:
        runs.mark("unserialisable")
        return object()

    @application.task(name="b.bad_repr")
    def bad_repr() -> None:
        runs.mark("bad_repr")
        raise BadRepr()

    @application.task(name="b.requeue_me")
    def requeue_me() -> None:
        runs.mark("requeue_me")
        raise Reject("again", requeue=True)

    @application.task(name="b.patient")
    def patient() -> str:
        runs.mark("patient")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # Deliberate: the task's own work, in small steps where an interrupt would land.
            time.sleep(0.01)
        return "never interrupted"

    application.runs = runs  # type: ignore[attr-defined]
    yield application
    application.close()


@pytest.fixture
def worker(app: App) -> Iterator[Worker]:
    w = run_worker(app, concurrency=2, hostname=f"boundary-{uuid.uuid4().hex[:8]}@test")
    yield w
    stop_worker(w)


def _runs(app: App) -> dict[str, int]:
    return app.runs.counts  # type: ignore[attr-defined, no-any-return]


def _publish(app: App, task: str, task_id: str, **headers: object) -> None:
    base = encode_task(new_task_message(task, (), task_id=task_id))
    wire = WireMessage(
        base.body,
        base.content_type,
        base.content_encoding,
        {**base.headers, **headers},
        base.properties,
    )
    transport = open_transport(app.conf.broker_url)
    try:
        transport.publish(app.conf.task_default_queue, wire)
    finally:
        transport.close()


def _dead_letters(app: App, expected: int, timeout: float = 30) -> dict[str, str]:
    """Task id -> reason of the dead letters, once ``expected`` arrived (bounded wait)."""
    transport = open_transport(app.conf.broker_url)
    reasons: dict[str, str] = {}
    try:
        with transport.consumer([f"{app.conf.task_default_queue}.dlq"], prefetch=50) as dlq:
            deadline = time.monotonic() + timeout
            while len(reasons) < expected and time.monotonic() < deadline:
                got = dlq.fetch(10, timeout=0.5)
                for d in got:
                    assert d.message is not None
                    h = d.message.headers
                    reasons[str(h.get("id"))] = str(h.get("x-celeriac-reject-reason"))
                dlq.ack(got)
    finally:
        transport.close()
    return reasons


def _alive(app: App, worker: Worker) -> None:
    assert app.send_task("b.ok", ("after",)).get(timeout=30) == "ok after"
    assert worker.thread.is_alive()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "state"),
    [
        ({"eta": "0001-01-01T00:00:00+14:00"}, "SUCCESS"),  # long due: runs
        ({"eta": "9999-12-31T23:59:59-14:00"}, "FAILURE"),  # a delay no timer holds
        ({"expires": "0001-01-01T00:00:00+14:00"}, "REVOKED"),  # expired: as Celery does
        # Once a valid-looking number that killed the watchdog: no limits for anyone after.
        ({"timelimit": [1e300, 1e300]}, "FAILURE"),
        ({"timelimit": [None, 1e12]}, "FAILURE"),
    ],
    ids=["eta-year-1", "eta-year-9999", "expires-year-1", "limit-1e300", "soft-1e12"],
)
def test_numbers_at_the_ends_of_their_range_end_in_one_settlement(
    app: App, worker: Worker, headers: dict[str, object], state: str
) -> None:
    task_id = str(uuid.uuid4())
    _publish(app, "b.ok", task_id, **headers)
    result = app.AsyncResult(task_id)
    eventually(lambda: result.state != "PENDING", 30, "a stored state", interval=0.05)
    assert result.state == state
    if state == "FAILURE":
        reasons = _dead_letters(app, 1)
        assert reasons[task_id].startswith("limit-out-of-range: "), reasons
    assert _runs(app).get("ok", 0) == (state == "SUCCESS")
    _alive(app, worker)


def test_time_limits_still_work_after_a_huge_one(app: App, worker: Worker) -> None:
    _publish(app, "b.ok", str(uuid.uuid4()), timelimit=[1e300, 1e300])
    patient = app.send_task("b.patient", soft_time_limit=0.3)
    with pytest.raises(Exception) as raised:
        patient.get(timeout=30)
    assert type(raised.value).__name__ == "SoftTimeLimitExceeded"
    _alive(app, worker)


def test_unserialisable_result_is_one_failure(app: App, worker: Worker) -> None:
    result = app.send_task("b.unserialisable")
    with pytest.raises(Exception, match=r"EncodeError|serialized"):
        result.get(timeout=30)
    assert result.state == "FAILURE"
    _alive(app, worker)
    assert _runs(app)["unserialisable"] == 1


def test_exception_whose_repr_raises_is_stored_as_failure(app: App, worker: Worker) -> None:
    result = app.send_task("b.bad_repr")
    with pytest.raises(Exception) as raised:
        result.get(timeout=30)
    assert "BadRepr" in type(raised.value).__name__ + str(raised.value)
    assert result.state == "FAILURE"
    _alive(app, worker)
    assert _runs(app)["bad_repr"] == 1


def test_a_task_that_always_requeues_is_poison_after_the_limit(app: App, worker: Worker) -> None:
    result = app.send_task("b.requeue_me")
    reasons = _dead_letters(app, 1)
    assert reasons[result.id].startswith("poison: delivered 3 times"), reasons
    assert result.state == "FAILURE"
    assert _runs(app)["requeue_me"] == 3
    _alive(app, worker)


def test_a_message_given_back_too_often_is_not_run(app: App, worker: Worker) -> None:
    # What a message that killed every worker that took it looks like to the next one.
    task_id = str(uuid.uuid4())
    _publish(app, "b.ok", task_id, **{"x-delivery-count": 3})
    reasons = _dead_letters(app, 1)
    assert reasons[task_id].startswith("poison: delivered 4 times"), reasons
    assert app.AsyncResult(task_id).state == "FAILURE"
    assert _runs(app).get("ok", 0) == 0
    _alive(app, worker)


@pytest.mark.parametrize(
    ("method", "arguments"),
    [
        ("time_limit", {"task_name": "b.ok", "soft": "abc", "hard": 10}),
        ("time_limit", {"task_name": "b.ok", "soft": 1e300}),
        ("time_limit", {"task_name": "b.ok", "hard": -1}),
        ("rate_limit", {"task_name": "b.ok", "rate_limit": "0.000001/h"}),
        ("rate_limit", {"task_name": "b.ok", "rate_limit": 1e-12}),
        ("rate_limit", {"task_name": "b.ok", "rate_limit": ["10/s"]}),
        ("revoke", {"task_id": [{"not": "an id"}]}),
        ("add_consumer", {"queue": 42}),
        ("pool_grow", {"n": 10**9}),
        ("pool_shrink", {"n": "a lot"}),
    ],
)
def test_a_remote_command_with_bad_arguments_changes_nothing(
    app: App, worker: Worker, method: str, arguments: dict[str, Any]
) -> None:
    before = (dict(worker.time_limits), dict(worker.buckets), set(worker.revoked),
              list(worker.queues), worker.concurrency)  # fmt: skip
    reply = app.control.call(method, arguments, destination=[worker.hostname], timeout=5, limit=1)
    assert reply is not None, "no reply"
    assert "error" in reply[worker.hostname], reply
    after = (dict(worker.time_limits), dict(worker.buckets), set(worker.revoked),
             list(worker.queues), worker.concurrency)  # fmt: skip
    assert after == before
    _alive(app, worker)


def test_a_hostile_control_broadcast_is_ignored(app: App, worker: Worker) -> None:
    if app.conf.broker_url.startswith("memory"):
        pytest.skip("remote control needs a broker other processes share")
    from celeriac.protocol.control import CONTROL_EXCHANGE

    transport = open_transport(app.conf.broker_url)
    try:
        for body in (b"[]", b'{"method": 1}', b'{"method": "ping", "destination": 5}', b"\xff"):
            transport.broadcast(
                CONTROL_EXCHANGE, WireMessage(body, "application/json", "utf-8", {}, {})
            )
    finally:
        transport.close()
    _alive(app, worker)
    assert json  # the bodies above are JSON on purpose: the parser must say no, not crash


def test_a_body_of_many_tiny_items_is_refused_by_count(app: App, worker: Worker) -> None:
    # 2.4 MB on the wire, about 20 times that once decoded: refused before decoding.
    task_id = str(uuid.uuid4())
    base = encode_task(new_task_message("b.ok", (), task_id=task_id))
    body = b"[[" + b",".join([b"{}"] * 1_200_000) + b"],{},{}]"
    wire = WireMessage(body, base.content_type, base.content_encoding, base.headers, {})
    transport = open_transport(app.conf.broker_url)
    try:
        transport.publish(app.conf.task_default_queue, wire)
    finally:
        transport.close()
    reasons = _dead_letters(app, 1)
    assert reasons[task_id].startswith("limit-exceeded: "), reasons
    assert "values" in reasons[task_id]
    _alive(app, worker)


@pytest.mark.parametrize(
    "options",
    [{"countdown": 1e300}, {"time_limit": -5}, {"queue": {"not": "a name"}}, {"eta": "someday"}],
)
def test_a_follow_up_the_client_refuses_does_not_run_its_parent_again(
    app: App, worker: Worker, options: dict[str, Any]
) -> None:
    # Once a counted requeue: the parent ran worker_max_deliveries times, then was poison.
    # The good follow-up is the chain's next step, sent on its own: several callbacks go as one
    # group, as Celery's worker sends them, and a group with a refused member is not sent.
    task_id = str(uuid.uuid4())
    bad = {"task": "b.ok", "args": [], "kwargs": {}, "options": options, "immutable": True}
    good = {"task": "b.ok", "args": ["callback"], "kwargs": {}, "options": {}, "immutable": True}
    message = new_task_message("b.ok", ("parent",), task_id=task_id, link=[bad], chain=[good])
    transport = open_transport(app.conf.broker_url)
    try:
        transport.publish(app.conf.task_default_queue, encode_task(message))
    finally:
        transport.close()
    assert app.AsyncResult(task_id).get(timeout=30) == "ok parent"
    _alive(app, worker)
    eventually(lambda: _runs(app).get("ok", 0) >= 3, 30, "the good callback")
    queue = app.conf.task_default_queue
    eventually(lambda: not worker.active and app.producer().queue_length(queue) == 0, 30, "idle")
    assert _runs(app)["ok"] == 3  # parent, the good callback, the probe: nobody twice
