"""Countdowns on quorum queues through Celery 5.5's ``celery_delayed_*`` topology, and real
Celery 5.7 clients and workers on the same queues honouring Celeriac's countdowns and ours
theirs."""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.protocol import WireMessage
from celeriac.transports import QueueSpec, open_transport
from celeriac.transports.amqp.native_delay import routing_key
from celeriac.transports.amqp.transport import AmqpTransport
from tests.brokers import AMQP_URL, require
from tests.waiting import eventually

#: How Celery's app declares a quorum queue it can use native delayed delivery on.
CELERY_APP = """
import os, time
from celery import Celery
from kombu import Exchange, Queue

Q = os.environ["T20_QUEUE"]
app = Celery("t20", broker=os.environ["T20_BROKER"])
app.conf.task_queues = [
    Queue(Q, Exchange(Q, type="topic"), routing_key=Q, queue_arguments={"x-queue-type": "quorum"})
]
app.conf.task_default_queue = Q
app.conf.broker_transport_options = {"confirm_publish": True}


@app.task(name="t20.mark")
def mark(path):
    with open(path, "a") as f:
        f.write(f"{time.time()}\\n")
"""
#: The same queue as Celeriac declares it to share it with Celery's app above.
SHARED = {"queue_type": "quorum", "exchange_type": "topic"}


def test_the_routing_key_spells_the_delay_in_whole_seconds_never_early() -> None:
    assert routing_key(2.0, "q") == "0." * 26 + "1.0.q"
    assert routing_key(2.1, "q") == "0." * 26 + "1.1.q"
    assert routing_key(0.2, "tasks") == "0." * 27 + "1.tasks"


@pytest.fixture
def queue() -> Iterator[str]:
    require("rabbitmq")
    name = f"t20-native-{uuid.uuid4().hex[:8]}"
    yield name
    t = AmqpTransport(AMQP_URL)
    ch = t.connection().channel()
    for q in (name, f"{name}.dlq"):
        ch.queue_delete(q)
    ch.exchange_delete(name)
    t.close()


def test_a_countdown_on_a_quorum_queue_waits_in_celerys_levels(queue: str) -> None:
    t = open_transport(AMQP_URL, queue_type="quorum")
    try:
        t.declare_queue(QueueSpec(queue))
        sent = time.monotonic()
        message = WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"id": "1"}, {})
        t.publish(queue, message, delay=1.2)  # rounded up: 2 s
        consumer = t.consumer([queue], prefetch=1)
        got = eventually(lambda: consumer.fetch(1, timeout=0.2), 10, "the delayed message")
        waited = time.monotonic() - sent
        # RabbitMQ expires a TTL a few ms early by our clock (1.996 s seen in a full run).
        assert 1.9 <= waited < 4.0, waited
        consumer.ack(got)
        consumer.close()
        check = t.connection().channel()  # the level queues exist as Celery declares them
        assert check.queue_declare("celery_delayed_1", passive=True).method.message_count == 0
    finally:
        t.close()


@pytest.mark.celery
def test_celery_and_celeriac_honour_each_others_countdowns(queue: str, tmp_path: Path) -> None:
    from interop import celery_env

    celery_env.ensure(quiet=True)
    (tmp_path / "t20_celery_app.py").write_text(textwrap.dedent(CELERY_APP))
    env = {"T20_QUEUE": queue, "T20_BROKER": AMQP_URL}
    marks = tmp_path / "marks.txt"

    # Celery's client sends a countdown; a Celeriac consumer of the queue gets it when due.
    t = open_transport(AMQP_URL, **SHARED)
    t.declare_queue(QueueSpec(queue))  # with the topology and the binding, as a Celery worker
    send = tmp_path / "send.py"
    send.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from t20_celery_app import mark\n"
        "print(time.time())\n"
        f"mark.apply_async(({str(marks)!r},), countdown=2)\n"
    )
    sent_at = float(celery_env.run_script(send, env=env).stdout.split()[0])
    consumer = t.consumer([queue], prefetch=1)
    got = eventually(lambda: consumer.fetch(1, timeout=0.2), 15, "Celery's delayed task")
    arrived = time.time()
    assert got[0].message is not None and got[0].message.headers["task"] == "t20.mark"
    assert arrived - sent_at >= 2.0, arrived - sent_at
    consumer.ack(got)
    consumer.close()
    t.close()

    # Celeriac's client sends a countdown; a real Celery worker runs it when due.
    app = App("t20", broker=AMQP_URL, result_backend=None, broker_transport_options=SHARED)
    with celery_env.CeleryWorker(
        tmp_path, "t20_celery_app", broker_url=AMQP_URL, queues=[queue], env=env
    ) as worker:
        sent_at = time.time()
        app.send_task("t20.mark", args=(str(marks),), countdown=2, queue=queue)
        eventually(marks.exists, 20, "the Celery worker running Celeriac's countdown task")
        ran_at = float(marks.read_text().split()[0])
        assert ran_at - sent_at >= 2.0, (ran_at - sent_at, worker.log())
        # Celery declared the same topology over ours: any argument of ours that differed
        # would have made RabbitMQ refuse its declarations.
        assert "Failed to" not in worker.log(), worker.log()
