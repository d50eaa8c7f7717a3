"""With a publish window, a RabbitMQ connection lets the kernel coalesce the writes of a burst of
publishes (Nagle) unless told not to (``coalesce_writes=False``) or something consumes on it; a
publish after a pause goes at once, whatever the kernel holds back goes out before anything
waits for the broker, and every message arrives."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from celeriac.transports import QueueSpec, TransportError
from celeriac.transports.amqp import transport as amqp_transport
from celeriac.transports.amqp.options import parse_options
from celeriac.transports.amqp.transport import AmqpTransport
from tests.brokers import AMQP_URL, require
from tests.transports.amqp_shared import small_message


def _nodelay(t: AmqpTransport) -> int:
    assert t.conn is not None
    sock = t.conn._impl._transport._sock
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


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


@pytest.fixture
def every_publish_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """Publishes count as one burst however slowly this machine runs them."""
    monkeypatch.setattr(amqp_transport, "_BURST_GAP_S", 3600.0)


def _burst(t: AmqpTransport, queue: str, n: int = 3) -> None:
    for i in range(n):
        t.publish(queue, small_message(i))


def test_only_a_burst_on_a_windowed_connection_that_consumes_nothing_is_held(
    opened: list[AmqpTransport], every_publish_a_burst: None
) -> None:
    queue = f"coalesce.{uuid.uuid4().hex[:8]}"
    windowed = _open(opened, publish_window=100)
    windowed.declare_queue(QueueSpec(queue))
    try:
        assert _nodelay(windowed) == 1  # nothing published yet: written at once
        _burst(windowed, queue)
        assert _nodelay(windowed) == 0
        windowed.set_publish_window(0)  # each publish waits for its confirm
        assert _nodelay(windowed) == 1
        _burst(windowed, queue)
        assert _nodelay(windowed) == 1
        windowed.set_publish_window(50)
        _burst(windowed, queue)
        assert _nodelay(windowed) == 0
        windowed.reconnect()
        assert _nodelay(windowed) == 1
        _burst(windowed, queue)
        assert _nodelay(windowed) == 0

        told_not_to = _open(opened, publish_window=100, coalesce_writes=False)
        _burst(told_not_to, queue)
        assert _nodelay(told_not_to) == 1

        consumer = windowed.consumer([queue])
        assert _nodelay(windowed) == 1  # its acks are not held back
        _burst(windowed, queue)
        assert _nodelay(windowed) == 1
        consumer.close()
        windowed.flush()
        told_not_to.flush()
    finally:
        windowed.purge(queue)


def test_a_publish_after_a_pause_goes_at_once(
    opened: list[AmqpTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(amqp_transport, "_BURST_GAP_S", 0.0)  # every publish after a pause
    t = _open(opened, publish_window=100)
    queue = f"coalesce.{uuid.uuid4().hex[:8]}"
    t.declare_queue(QueueSpec(queue))
    try:
        _burst(t, queue, 10)
        assert _nodelay(t) == 1
        t.flush()
    finally:
        t.purge(queue)


def test_coalesced_publishes_all_arrive_and_flush_waits_for_none_held_back(
    opened: list[AmqpTransport],
) -> None:
    t = _open(opened, publish_window=1000)
    queue = f"coalesce.{uuid.uuid4().hex[:8]}"
    t.declare_queue(QueueSpec(queue))
    try:
        for i in range(3000):
            t.publish(queue, small_message(i))
        t.flush()
        assert not t.batch.pending
        assert t.queue_length(queue) == 3000
    finally:
        t.purge(queue)


def test_nothing_is_held_back_while_the_transport_waits_for_the_broker(
    opened: list[AmqpTransport], every_publish_a_burst: None
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
            t.publish(queue, small_message(i))
        assert _nodelay(t) == 0  # coalescing between waits
        t.flush()
        assert seen and set(seen) == {1}  # the wait for the confirms: each write at once
        assert _nodelay(t) == 1
        _burst(t, queue)  # the next burst is held again
        assert _nodelay(t) == 0
        t.flush()
        assert t.queue_length(queue) == 13
    finally:
        t.purge(queue)
