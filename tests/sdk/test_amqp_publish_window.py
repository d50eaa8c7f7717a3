"""RabbitMQ clients publish with a bounded confirm window by default, and keep the README's
guarantee: a message whose ``delay()`` returned is not lost while the process lives (written
again on a new connection until confirmed), every one is confirmed at ``app.flush()`` and at
exit, and a worker acks a task only once the broker confirmed what the task sent.

On a virtual host of these tests' own: dropping its connections drops no one else's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from celeriac import App
from celeriac.transports import TransportError, open_transport
from celeriac.transports.amqp.consumer import AmqpConsumer
from celeriac.transports.amqp.options import CLIENT_WINDOW
from celeriac.transports.amqp.transport import AmqpTransport
from celeriac.worker import run_worker, stop_worker
from tests.brokers import amqp_vhost
from tests.faults.proxy import CuttableProxy
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
VHOST = "celeriac-window"


@pytest.fixture
def broker() -> str:
    return amqp_vhost(VHOST)


@pytest.fixture
def app(broker: str, tmp_path: Path) -> Iterator[App]:
    application = App("window", broker=broker, task_default_queue=f"window.{uuid.uuid4().hex[:8]}")
    yield application
    application.close()


def _pooled(app: App) -> list[AmqpTransport]:
    pool = app._producers
    assert pool is not None
    transports = [p.transport for p in pool._all]
    assert all(isinstance(t, AmqpTransport) for t in transports)
    return transports  # type: ignore[return-value]


def _unconfirmed(app: App) -> int:
    return sum(len(t.batch.pending) + len(t._lost) for t in _pooled(app))


def _length(broker: str, queue: str) -> int:
    with open_transport(broker) as transport:
        return transport.queue_length(queue)


def _drop_connections() -> None:
    services = str(REPO / "scripts/services")
    cmd = [services, "rabbitmqctl", "close_all_connections", "--vhost", VHOST, "dropped"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def test_a_client_publishes_with_the_window_and_kombu_s_names_turn_it_off(broker: str) -> None:
    apps = {
        "default": App("a", broker=broker),
        "confirm_publish": App("b", broker=broker,
                               broker_transport_options={"confirm_publish": True}),
        "window 0": App("c", broker=broker, broker_transport_options={"publish_window": 0}),
        "window 10": App("d", broker=broker, broker_transport_options={"publish_window": 10}),
    }  # fmt: skip
    windows = {}
    for label, app in apps.items():
        with app.producers.acquire() as producer:
            windows[label] = producer.transport.window  # type: ignore[attr-defined]
        app.close()
    assert windows == {"default": CLIENT_WINDOW, "confirm_publish": 0, "window 0": 0,
                       "window 10": 10}  # fmt: skip
    both = {"confirm_publish": True, "publish_window": 5}
    refused = App("e", broker=broker, broker_transport_options=both)
    with pytest.raises(TransportError, match="confirm_publish=True and publish_window=5"):
        refused.send_task("x.y")


def test_a_returned_delay_survives_a_dropped_connection_before_its_confirm(broker: str) -> None:
    # Through a proxy that loses what the connection carries, then cuts it: the last 300 sends
    # never reached RabbitMQ, and only the client's copy, written again, can deliver them.
    parts = urlsplit(broker)
    proxy = CuttableProxy(parts.port or 5672)
    via = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    queue = f"window.drop.{uuid.uuid4().hex[:8]}"
    app = App("drop", broker=via.geturl(), task_default_queue=queue)
    try:
        ids = [app.send_task("window.noop", (n,)).id for n in range(100)]
        app.flush()
        proxy.swallow()
        ids += [app.send_task("window.noop", (n,)).id for n in range(100, 400)]
        assert _unconfirmed(app) == 300  # each delay() returned without its confirm
        proxy.cut()
        proxy.restore()
        app.flush()  # a new connection: the 300 written again, then confirmed
        assert _unconfirmed(app) == 0
    finally:
        app.close()
        proxy.close()
    got: set[str] = set()
    with open_transport(broker) as transport, transport.consumer([queue], 1000) as consumer:

        def more() -> bool:
            batch = consumer.fetch(1000, timeout=0.2)
            consumer.ack(batch)
            got.update(str(d.message.headers["id"]) for d in batch if d.message is not None)
            return got >= set(ids)

        eventually(more, 15, "every task whose delay() returned")
        transport.purge(queue)
    assert got == set(ids)


def test_app_flush_waits_for_every_confirm(app: App, broker: str) -> None:
    for n in range(2500):  # past the window: some confirms read on the way, the rest at flush
        app.send_task("window.noop", (n,))
    app.flush()
    assert _unconfirmed(app) == 0
    assert _length(broker, app.conf.task_default_queue) == 2500


def test_a_process_that_exits_without_flushing_loses_nothing(broker: str) -> None:
    queue = f"window.exit.{uuid.uuid4().hex[:8]}"
    script = textwrap.dedent(f"""
        from celeriac import App
        app = App("exit", broker={broker!r}, task_default_queue={queue!r})
        for n in range(3000):
            app.send_task("window.noop", (n,))
        pool = app.producers
        assert sum(len(p.transport.batch.pending) for p in pool._all) > 0, "all confirmed early"
        # no flush, no close: the interpreter's exit confirms the rest
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _length(broker, queue) == 3000


def test_a_worker_acks_a_task_only_once_what_it_sent_is_confirmed(
    app: App, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = f"window.children.{uuid.uuid4().hex[:8]}"

    @app.task(name="window.fan", acks_late=True)
    def fan(count: int) -> int:
        for n in range(count):
            app.send_task("window.child", (n,), queue=elsewhere)
        return count

    # What the pool held unconfirmed each time the worker acked tasks (a real broker: only the
    # consumer's ack is watched).
    at_ack: list[int] = []
    lock = threading.Lock()
    real_ack = AmqpConsumer.ack

    def watched(self: AmqpConsumer, deliveries: Any) -> None:
        deliveries = list(deliveries)
        if any(d.queue == app.conf.task_default_queue for d in deliveries):
            with lock:
                at_ack.append(_unconfirmed(app))
        real_ack(self, deliveries)

    monkeypatch.setattr(AmqpConsumer, "ack", watched)
    for _ in range(5):
        fan.delay(40)
    app.flush()  # the client's sends are confirmed: from here on only the tasks publish
    # Solo: the tasks run in the loop's thread, so none publishes while another is acked.
    worker = run_worker(app, pool="solo")
    try:
        eventually(lambda: worker.processed >= 5, 30, "five fan-out tasks settled")
        eventually(lambda: len(at_ack) >= 1, 10, "the tasks acked")
        # The tasks' sends went through the window (else this test proves nothing) ...
        assert all(t.window == CLIENT_WINDOW for t in _pooled(app))
        # ... and none was still unconfirmed when the worker acked a task.
        assert at_ack and all(n == 0 for n in at_ack), at_ack
    finally:
        stop_worker(worker)
    assert _length(broker, elsewhere) == 200
    assert _length(broker, app.conf.task_default_queue) == 0
