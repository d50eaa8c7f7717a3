"""RabbitMQ consumer reads of large bodies: larger socket reads while they come, and every
body intact whatever its size."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac.protocol import decode_task, encode_task, new_task_message
from celeriac.transports import Delivery, QueueSpec, open_transport
from celeriac.transports.amqp import consumer as amqp_consumer
from celeriac.transports.amqp.transport import AmqpTransport
from tests.brokers import AMQP_URL, require

pytestmark = pytest.mark.broker


@pytest.fixture
def transport() -> Iterator[AmqpTransport]:
    require("rabbitmq")
    t = open_transport(AMQP_URL)
    assert isinstance(t, AmqpTransport)
    t.connect()
    yield t
    t.close()


def _read_size(t: AmqpTransport) -> int:
    io: Any = t.connection()._impl._transport
    return int(io._MAX_RECV_BYTES)


def _fetch(consumer: Any, count: int) -> list[Delivery]:
    got: list[Delivery] = []
    for _ in range(100):
        if len(got) >= count:
            break
        batch = consumer.fetch(count - len(got), timeout=0.2)
        consumer.ack(batch)
        got += batch
    return got


def test_large_bodies_switch_to_large_reads_and_back(transport: AmqpTransport) -> None:
    queue = f"large-{uuid.uuid4().hex[:8]}"
    big = [encode_task(new_task_message("t", (str(n) * (1 << 20),))) for n in range(3)]
    small = [encode_task(new_task_message("t", (n,))) for n in range(5)]
    transport.declare_queue(QueueSpec(queue))
    try:
        default = _read_size(transport)
        transport.publish_many(queue, big)
        with transport.consumer([queue], prefetch=10) as consumer:
            got = _fetch(consumer, 3)
            assert [decode_task(d.message).args[0] for d in got if d.message] == [
                str(n) * (1 << 20) for n in range(3)
            ]
            assert _read_size(transport) == amqp_consumer._LARGE_READ > default
            transport.publish_many(queue, small)
            got = _fetch(consumer, 5)
            assert [decode_task(d.message).args[0] for d in got if d.message] == list(range(5))
            assert _read_size(transport) == default
    finally:
        transport.purge(queue)
