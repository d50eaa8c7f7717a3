"""A transport whose settling raises something other than a TransportError (a bug of its own,
such as pika's ChannelWrongStateError once escaped RabbitMQ's reject) does not stop the worker:
the delivery is left to come back, and the next task runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.transports import Delivery, open_transport
from celeriac.transports.memory.transport import MemoryConsumer
from celeriac.worker import run_worker, stop_worker


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(
        "settling",
        broker=f"memory://settling-{uuid.uuid4().hex[:8]}",
        backend=f"sqlite:///{tmp_path}/r.db",
        task_default_queue="settling",
    )

    @application.task(name="settling.ok")
    def ok() -> str:
        return "ok"

    yield application
    application.close()


def test_a_reject_that_raises_does_not_stop_the_worker(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    rejected: list[str] = []

    def broken_reject(self: MemoryConsumer, delivery: Delivery, reason: str) -> None:
        rejected.append(reason)
        raise RuntimeError("a transport bug")

    monkeypatch.setattr(MemoryConsumer, "reject", broken_reject)
    worker = run_worker(app, concurrency=1)
    try:
        base = encode_task(new_task_message("settling.ok", ()))
        refused = WireMessage(
            base.body, "application/x-unheard-of", "binary", base.headers, base.properties
        )
        transport = open_transport(app.conf.broker_url)
        transport.publish("settling", refused)
        transport.close()
        assert app.send_task("settling.ok").get(timeout=30) == "ok"
        assert rejected and rejected[0].startswith("content-disallowed"), rejected
        assert worker.thread.is_alive()  # type: ignore[attr-defined]
    finally:
        stop_worker(worker)
