"""Security on a live worker: signatures required, pickle refused, credentials never logged."""

from __future__ import annotations

import logging
import pickle
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.protocol.signing import sign
from celeriac.transports import BrokerUnavailable, open_transport
from celeriac.worker import run_worker, stop_worker
from tests.brokers import AMQP_URL, amqp_params, require, unique
from tests.transports.conftest import url_for

REPO = Path(__file__).resolve().parents[2]
SECRET = "an-hmac-secret-for-tests"


def _dead_letters(app: App, count: int, timeout: float = 20) -> list[WireMessage]:
    """Wait for ``count`` dead letters of the app's queue and take them."""
    transport = open_transport(app.conf.broker_url)
    got: list[WireMessage] = []
    try:
        with transport.consumer([f"{app.conf.task_default_queue}.dlq"], prefetch=50) as dlq:
            deadline = time.monotonic() + timeout
            while len(got) < count and time.monotonic() < deadline:
                batch = dlq.fetch(count - len(got), timeout=0.5)
                got += [d.message for d in batch if d.message is not None]
                dlq.ack(batch)
    finally:
        transport.close()
    return got


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_for(str(request.param), tmp_path)


@pytest.fixture
def worker_app(broker: str, tmp_path: Path) -> Iterator[App]:
    """A worker that requires signatures, with a task that says it ran."""
    app = App(
        "secure",
        broker=broker,
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue=unique("secure"),
        security_signing_key=SECRET,
        security_require_signature=True,
    )

    @app.task(name="secure.add")
    def add(x: int, y: int) -> int:
        return x + y

    worker = run_worker(app, concurrency=2)
    yield app
    stop_worker(worker)
    app.close()


def test_signed_runs_unsigned_and_tampered_are_dead_lettered(worker_app: App) -> None:
    assert worker_app.send_task("secure.add", (2, 3)).get(timeout=20) == 5
    queue = worker_app.conf.task_default_queue
    unsigned = encode_task(new_task_message("secure.add", (1, 1), task_id="unsigned"))
    signed = sign(encode_task(new_task_message("secure.add", (1, 1), task_id="tampered")), SECRET)
    tampered = WireMessage(
        signed.body.replace(b"[1,1]", b"[9,9]"),
        signed.content_type,
        signed.content_encoding,
        signed.headers,
        signed.properties,
    )
    assert tampered.body != signed.body
    transport = open_transport(worker_app.conf.broker_url)
    try:
        transport.publish(queue, unsigned)
        transport.publish(queue, tampered)
    finally:
        transport.close()
    reasons = {
        m.headers["id"]: m.headers["x-celeriac-reject-reason"] for m in _dead_letters(worker_app, 2)
    }
    assert reasons["unsigned"].startswith("signature-invalid:") and "missing" in reasons["unsigned"]
    assert reasons["tampered"].startswith("signature-invalid:") and "match" in reasons["tampered"]


def test_a_worker_that_requires_signatures_needs_a_key(tmp_path: Path) -> None:
    app = App("nokey", broker="memory://nokey", backend=None, security_require_signature=True)
    with pytest.raises(ValueError, match="security_signing_key"):
        run_worker(app, concurrency=1)


class _Boom:
    """Unpickling this would create the marker file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_pickle_is_refused_and_never_loaded(broker: str, tmp_path: Path) -> None:
    app = App("nopickle", broker=broker, backend=None, task_default_queue=unique("nopickle"))

    @app.task(name="nopickle.run")
    def run(x: object) -> None:
        return None

    marker = tmp_path / "unpickled"
    base = encode_task(new_task_message("nopickle.run", (1,), task_id="pickled"))
    body = pickle.dumps(((_Boom(marker),), {}, {}))
    pickled = WireMessage(
        body, "application/x-python-serialize", "binary", base.headers, base.properties
    )
    worker = run_worker(app, concurrency=1)
    try:
        transport = open_transport(broker)
        try:
            app.declare(app.conf.task_default_queue)
            transport.publish(app.conf.task_default_queue, pickled)
        finally:
            transport.close()
        dead = _dead_letters(app, 1)
    finally:
        stop_worker(worker)
        app.close()
    assert dead and dead[0].headers["x-celeriac-reject-reason"].startswith("content-disallowed")
    assert not marker.exists(), "the worker unpickled an untrusted message"


def test_broker_password_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    require("rabbitmq")
    user, password = "celeriac-secret-user", "pw-Zx81-never-in-logs"
    ctl = [str(REPO / "scripts/services"), "rabbitmqctl"]
    subprocess.run([*ctl, "add_user", user, password], capture_output=True, check=False)
    subprocess.run(
        [*ctl, "set_permissions", "-p", amqp_params().vhost, user, ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )
    good = AMQP_URL.replace("guest:guest@", f"{user}:{password}@")
    bad = AMQP_URL.replace("guest:guest@", f"{user}:wrong-{password}@")
    assert good != AMQP_URL
    caplog.set_level(logging.DEBUG)
    app = App("logged", broker=good, backend="rpc://", task_default_queue=unique("logged"))

    @app.task(name="logged.add")
    def add(x: int, y: int) -> int:
        return x + y

    worker = run_worker(app, concurrency=1)
    try:
        assert app.send_task("logged.add", (1, 2)).get(timeout=20) == 3
    finally:
        stop_worker(worker)
        app.close()
    with pytest.raises(BrokerUnavailable) as info:
        open_transport(bad).connect()
    unreachable = good.replace(":5672", ":1")
    with pytest.raises(BrokerUnavailable) as info2:
        open_transport(unreachable).connect()
    texts = [str(info.value), str(info2.value), repr(app), caplog.text]
    assert caplog.text, "nothing was logged, so the check would prove nothing"
    for text in texts:
        assert password not in text
