"""A RabbitMQ node that freezes (its connections open, silent) is left for the next node within
two heartbeat intervals, and a broadcast subscription follows the transport there.

The frozen node is a proxy in front of the shared broker that stops relaying (tests/faults/
proxy.py); the next node of the URL list is the shared broker itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pika
import pytest

from celeriac.protocol import WireMessage
from celeriac.transports import QueueSpec, TransportError
from celeriac.transports.amqp.transport import AmqpTransport
from tests.brokers import AMQP_URL, amqp_params, require
from tests.faults.proxy import CuttableProxy
from tests.waiting import eventually

#: Negotiated heartbeat (s): the node counts as dead after 2 s of silence.
HEARTBEAT = 1


def message(text: str) -> WireMessage:
    return WireMessage(
        body=f'[["{text}"], {{}}, {{}}]'.encode(),
        content_type="application/json",
        content_encoding="utf-8",
        headers={"id": str(uuid.uuid4()), "task": "t"},
        properties={},
    )


@pytest.fixture
def proxied() -> Iterator[tuple[CuttableProxy, str]]:
    """A proxy to the shared RabbitMQ; the URL list "the proxy, then the broker itself"."""
    require("rabbitmq")
    parts = urlsplit(AMQP_URL)
    proxy = CuttableProxy(parts.port or 5672, parts.hostname or "127.0.0.1")
    through = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    try:
        yield proxy, f"{through.geturl()};{AMQP_URL}"
    finally:
        proxy.close()


def test_a_frozen_node_is_left_within_two_heartbeats(proxied: tuple[CuttableProxy, str]) -> None:
    proxy, urls = proxied
    t = AmqpTransport(urls, heartbeat=HEARTBEAT)
    queue = f"liveness.{uuid.uuid4().hex[:8]}"
    try:
        t.declare_queue(QueueSpec(queue, durable=False))
        assert f":{proxy.port}" in t.node
        proxy.freeze()
        frozen_at = time.monotonic()
        t.publish(queue, message("after the freeze"))  # waits for a confirm that never comes
        took = time.monotonic() - frozen_at
        assert f":{proxy.port}" not in t.node, "the transport stayed on the frozen node"
        # Two heartbeats of silence, then a connection to the next node. pika's own check
        # (heartbeat + 5 s windows) took 6-12 s here.
        assert took < 2 * HEARTBEAT + 2.0, f"left the frozen node after {took:.1f} s"
        assert t.queue_length(queue) == 1
    finally:
        proxy.thaw()
        t.purge(queue)
        t.close()


def test_a_subscription_follows_the_transport_to_the_next_node(
    proxied: tuple[CuttableProxy, str],
) -> None:
    proxy, urls = proxied
    t = AmqpTransport(urls, heartbeat=HEARTBEAT)
    sender = AmqpTransport(AMQP_URL)
    exchange = f"liveness.bcast.{uuid.uuid4().hex[:8]}"
    sub = t.subscribe(exchange)
    try:
        proxy.freeze()
        got: list[WireMessage] = []

        def received() -> bool:
            # Broadcasts sent before the subscription is bound again on the next node are
            # not for it: send until one arrives.
            sender.broadcast(exchange, message("to the new node"))
            found = sub.get(timeout=0.5)
            if found is not None:
                got.append(found)
            return bool(got)

        eventually(received, 15.0, "a broadcast through the next node", 0.0)
        assert got[0].body == message("to the new node").body
        assert f":{proxy.port}" not in t.node
    finally:
        proxy.thaw()
        sub.close()
        t.close()
        sender.close()


def test_a_subscription_the_broker_refuses_fails_clearly() -> None:
    require("rabbitmq")
    exchange = f"liveness.taken.{uuid.uuid4().hex[:8]}"
    p = amqp_params()
    conn = pika.BlockingConnection(
        pika.ConnectionParameters(
            p.host, p.port, p.vhost, pika.PlainCredentials(p.user, p.password)
        )
    )
    conn.channel().exchange_declare(exchange, "direct", durable=True)  # not the fanout we use
    t = AmqpTransport(AMQP_URL)
    try:
        with pytest.raises(TransportError, match=rf"refused the subscription to '{exchange}'.*406"):
            t.subscribe(exchange)
    finally:
        conn.channel().exchange_delete(exchange)
        conn.close()
        t.close()
