"""With a publish window, a RabbitMQ connection lets the kernel coalesce its writes (Nagle) unless
told not to (``coalesce_writes=False``) or something consumes on it; whatever the kernel holds
back goes out before anything waits for the broker, and every message arrives."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from celeriac.protocol import WireMessage
from celeriac.transports import QueueSpec, TransportError
from celeriac.transports.amqp.options import parse_options
from celeriac.transports.amqp.transport import AmqpTransport
from tests.brokers import AMQP_URL, require


def _nodelay(t: AmqpTransport) -> int:
    assert t.conn is not None
    sock = t.conn._impl._transport._sock
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def _message(i: int) -> WireMessage:
    return WireMessage(
        body=b"[[], {}, {}]",
        content_type="application/json",
        content_encoding="utf-8",
        headers={"task": "t", "id": str(i)},
        properties={"delivery_mode": 2},
    )


@pytest.fixture
def opened() -> Iterator[list[AmqpTransport]]:
    require("rabbitmq")
    transports: list[AmqpTransport] = []
    yield transports
    for t in transports:
        t.close()


def _open(opened: list[AmqpTransport], **options: object) -> AmqpTransport:
    t = AmqpTransport(AMQP_URL, **options)
    opened.append(t)
    t.connect()
    return t


def test_the_option_is_a_flag() -> None:
    assert parse_options({}, {}).coalesce_writes is True
    assert parse_options({"coalesce_writes": "false"}, {}).coalesce_writes is False
    with pytest.raises(TransportError, match="coalesce_writes"):
        parse_options({"coalesce_writes": "sometimes"}, {})


def test_only_a_windowed_connection_that_consumes_nothing_coalesces(
    opened: list[AmqpTransport],
) -> None:
    assert _nodelay(_open(opened)) == 1  # no window: each publish waits, written at once
    windowed = _open(opened, publish_window=100)
    assert _nodelay(windowed) == 0
    assert _nodelay(_open(opened, publish_window=100, coalesce_writes=False)) == 1
    windowed.set_publish_window(0)
    assert _nodelay(windowed) == 1
    windowed.set_publish_window(50)
    assert _nodelay(windowed) == 0
    windowed.reconnect()
    assert _nodelay(windowed) == 0
    queue = f"coalesce.{uuid.uuid4().hex[:8]}"
    windowed.declare_queue(QueueSpec(queue))
    try:
        consumer = windowed.consumer([queue])
        assert _nodelay(windowed) == 1  # its acks are not held back
        windowed.reconnect()
        assert _nodelay(windowed) == 1
        consumer.close()
    finally:
        windowed.purge(queue)


def test_coalesced_publishes_all_arrive_and_flush_waits_for_none_held_back(
    opened: list[AmqpTransport],
) -> None:
    t = _open(opened, publish_window=1000)
    queue = f"coalesce.{uuid.uuid4().hex[:8]}"
    t.declare_queue(QueueSpec(queue))
    try:
        for i in range(3000):
            t.publish(queue, _message(i))
        t.flush()
        assert not t.batch.pending
        assert t.queue_length(queue) == 3000
    finally:
        t.purge(queue)


def test_nothing_is_held_back_while_the_transport_waits_for_the_broker(
    opened: list[AmqpTransport],
) -> None:
    t = _open(opened, publish_window=1000)
    queue = f"coalesce.{uuid.uuid4().hex[:8]}"
    t.declare_queue(QueueSpec(queue))
    seen: list[int] = []
    assert t.conn is not None
    original = t.conn.process_data_events

    def watched(time_limit: float | None = 0) -> None:
        seen.append(_nodelay(t))
        original(time_limit=time_limit)

    t.conn.process_data_events = watched
    try:
        for i in range(10):
            t.publish(queue, _message(i))
        assert _nodelay(t) == 0  # coalescing between waits
        t.flush()
        assert seen and set(seen) == {1}  # the wait for the confirms: each write at once
        assert _nodelay(t) == 0
        assert t.queue_length(queue) == 10
    finally:
        t.purge(queue)
