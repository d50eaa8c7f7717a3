"""The rpc:// result backend between real Celery 5.7 and Celeriac on RabbitMQ, both ways: results
travel as messages to the caller's reply queue, in Celery's format, with no store in between."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import AMQP_URL, require, unique

pytestmark = [pytest.mark.celery, pytest.mark.broker]

CLIENT = Path(__file__).with_name("celery_client.py")
E2E_DIR = Path(__file__).resolve().parents[2] / "interop" / "e2e"


@pytest.fixture
def app() -> Iterator[App]:
    require("rabbitmq")
    celery_env.ensure(quiet=True)
    application = App(
        "rpc-interop", broker=AMQP_URL, backend="rpc://", task_default_queue=unique("rpc-both")
    )

    @application.task(name="e2e.add")
    def add(x: int, y: int) -> int:
        return x + y

    @application.task(name="e2e.fail")
    def fail(msg: str) -> None:
        raise ValueError(msg)

    yield application
    application.close()


def test_celery_client_reads_a_celeriac_workers_reply(app: App) -> None:
    worker = run_worker(app, concurrency=2)
    try:
        proc = celery_env.run_script(
            CLIENT,
            AMQP_URL,
            "rpc://",
            app.conf.task_default_queue,
            "e2e.add",
            "[20, 22]",
            "wait",
            timeout=120,
        )
    finally:
        stop_worker(worker)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["result"] == 42


def test_celeriac_client_reads_a_celery_workers_reply(app: App) -> None:
    queue = app.conf.task_default_queue
    with celery_env.CeleryWorker(
        E2E_DIR,
        "e2e_celery_app",
        broker_url=AMQP_URL,
        backend_url="rpc://",
        queues=[queue],
        env={"CELERIAC_E2E_QUEUE": queue},
        ready_timeout=90.0,
    ):
        assert app.send_task("e2e.add", (2, 3)).get(timeout=60) == 5
        with pytest.raises(ValueError, match="boom"):
            app.send_task("e2e.fail", ("boom",)).get(timeout=60)
