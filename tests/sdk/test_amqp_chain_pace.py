"""A RabbitMQ worker confirms what a task sent before it acks the task; that wait ends when the
confirms are in. (It used to last a whole 50 ms round of pika's I/O loop, and blocked the
worker's loop meanwhile: a chain advanced one step per 50 ms.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App, chain
from celeriac.worker import run_worker, stop_worker
from tests.brokers import AMQP_URL, require

STEPS = 20
#: pika's time limit for one round of the transport's wait for confirms.
ROUND_S = 0.05


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    require("rabbitmq")
    application = App(
        "chainpace",
        broker=AMQP_URL,
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue=f"chainpace.{uuid.uuid4().hex[:8]}",
    )
    yield application
    application.close()


def test_a_chain_does_not_wait_a_round_at_each_step(app: App) -> None:
    @app.task(name="chainpace.inc")
    def inc(x: int) -> int:
        return x + 1

    worker = run_worker(app, pool="threads", concurrency=2)
    try:
        assert inc.delay(0).get(timeout=30) == 1  # the worker is up and consuming
        start = time.monotonic()
        result = chain(inc.s(0), *[inc.s() for _ in range(STEPS - 1)]).apply_async()
        assert result.get(timeout=60) == STEPS
        took = time.monotonic() - start
    finally:
        stop_worker(worker)
        app.producer().purge(app.conf.task_default_queue)
    # Each step is a task that sends the next one, then is acked once that send is confirmed.
    assert took < STEPS * ROUND_S * 0.8, took
