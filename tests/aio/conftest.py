"""An app on a real broker with a worker in a thread, for the asyncio client's tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import REDIS_URL
from tests.transports.conftest import url_for


def make_app(broker: str, tmp_path: Path) -> App:
    """An app on ``broker`` (a transport name, or ``rpc`` for RabbitMQ with rpc:// results)."""
    url = url_for("amqp" if broker == "rpc" else broker, tmp_path)
    backend = f"sqlite:///{tmp_path}/results.db"
    if broker == "redis":
        backend = REDIS_URL.rsplit("/", 1)[0] + "/3"
    elif broker == "rpc":
        backend = "rpc://"
    queue = f"aio.{uuid.uuid4().hex[:8]}"
    return App("aio", broker=url, backend=backend, task_default_queue=queue,
               broker_transport_options={"visibility_timeout": 1})  # fmt: skip


class Tasks:
    """The tasks these tests send, and a gate one of them waits on."""

    def __init__(self, app: App) -> None:
        self.gate = threading.Event()
        gate = self.gate

        @app.task
        def add(x: int, y: int) -> int:
            return x + y

        @app.task
        async def adouble(x: int) -> int:
            return 2 * x

        @app.task
        def fail(message: str) -> None:
            raise ValueError(message)

        @app.task
        def gated(x: int) -> int:
            if not gate.wait(30):
                raise TimeoutError("the test never opened the gate")
            return x

        self.add, self.adouble, self.fail, self.gated = add, adouble, fail, gated


@pytest.fixture
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[App, Tasks]]:
    app = make_app(str(request.param), tmp_path)
    tasks = Tasks(app)
    worker: Worker = run_worker(app, concurrency=4, hostname=f"aio-{uuid.uuid4().hex[:8]}@test")
    app.worker_hostname = worker.hostname  # type: ignore[attr-defined]
    try:
        yield app, tasks
    finally:
        tasks.gate.set()
        stop_worker(worker)
        app.close()


def run(coro: Any) -> Any:
    """Run a test coroutine on a fresh event loop."""
    import asyncio

    return asyncio.run(coro)
