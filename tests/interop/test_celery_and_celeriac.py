"""Real Celery 5.7 and Celeriac on the same broker, both directions, results read on both sides.

(a) a Celery client sends, a Celeriac worker runs, Celery reads the result;
(b) a Celeriac client sends, a Celery worker runs, Celeriac reads the result;
(c) a Celery client's message is read by our transport consumer and decoded by our codec.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.protocol import TaskMessage, decode_task
from celeriac.transports import QueueSpec, Transport, open_transport
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import AMQP_URL, REDIS_URL, require, unique

pytestmark = [pytest.mark.celery, pytest.mark.broker]

CLIENT = Path(__file__).with_name("celery_client.py")
APP_DIR = Path(__file__).resolve().parents[2] / "interop" / "capture"
BROKERS = {"redis": REDIS_URL, "rabbitmq": AMQP_URL}


def _backend() -> str:
    return REDIS_URL.rsplit("/", 1)[0] + "/1"


def _celery_client(broker: str, queue: str, task: str, args: list[object], mode: str) -> dict:
    proc = celery_env.run_script(
        CLIENT, broker, _backend(), queue, task, json.dumps(args), mode, timeout=120
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    require("redis")
    require(str(request.param))
    celery_env.ensure(quiet=True)
    return BROKERS[str(request.param)]


@pytest.fixture
def app(broker: str) -> Iterator[App]:
    application = App(
        "interop-side",
        broker=broker,
        backend=_backend(),
        task_default_queue=unique("celeriac-both"),
    )

    @application.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    yield application
    application.close()


def test_celery_client_celeriac_worker(broker: str, app: App) -> None:
    worker = run_worker(app, concurrency=2)
    try:
        reply = _celery_client(broker, app.conf.task_default_queue, "interop.add", [2, 3], "wait")
    finally:
        stop_worker(worker)
    assert reply["result"] == 5


def test_celeriac_client_celery_worker(broker: str, app: App) -> None:
    queue = app.conf.task_default_queue
    with celery_env.CeleryWorker(
        APP_DIR,
        "interop_app",
        broker_url=broker,
        backend_url=_backend(),
        queues=[queue],
        ready_timeout=60.0,
    ):
        result = app.send_task("interop.add", (20, 22), queue=queue)
        assert result.get(timeout=60) == 42
        assert result.state == "SUCCESS"


def _take_one(transport: Transport, queue: str) -> TaskMessage:
    """The one message Celery's client sent to ``queue``, decoded and acked (20 s at most)."""
    with transport.consumer([queue], prefetch=1) as consumer:
        got = []
        for _ in range(20):
            got = consumer.fetch(1, timeout=1.0)
            if got:
                break
        assert got and got[0].message is not None, "nothing arrived from Celery"
        msg = decode_task(got[0].message)
        consumer.ack(got)
    return msg


def test_celery_client_message_read_by_our_transport(broker: str) -> None:
    queue = unique("celeriac-read")
    transport = open_transport(broker)
    try:
        transport.declare_queue(QueueSpec(queue))
        sent = _celery_client(broker, queue, "interop.add", [7, 8], "send")
        msg = _take_one(transport, queue)
        assert (msg.task, msg.id, msg.args) == ("interop.add", sent["id"], (7, 8))
        assert msg.headers.root_id == sent["id"] and msg.headers.lang == "py"
    finally:
        transport.close()


def test_celery_client_large_message_read_by_our_transport(broker: str) -> None:
    # 100,000 characters (a command-line argument holds at most 128 KiB): past the sizes where
    # our JSON decoder walks instead of scanning and the RabbitMQ consumer reads large; the big
    # integer must come back exact from Kombu's JSON.
    queue = unique("celeriac-read-large")
    args = ["x" * 100_000, 2**100]
    transport = open_transport(broker)
    try:
        transport.declare_queue(QueueSpec(queue))
        sent = _celery_client(broker, queue, "interop.add", args, "send")
        msg = _take_one(transport, queue)
        assert (msg.id, msg.args) == (sent["id"], tuple(args))
        assert type(msg.args[1]) is int
    finally:
        transport.close()
