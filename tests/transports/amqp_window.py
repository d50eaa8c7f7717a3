"""What the RabbitMQ publish-window tests share: a small task message, and a connected transport
with a publish window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celeriac.protocol import WireMessage
from celeriac.transports.amqp.transport import AmqpTransport
from tests.brokers import AMQP_URL, require


def small_message(i: int) -> WireMessage:
    """A persistent task message of a few bytes, numbered ``i``."""
    return WireMessage(
        body=b"[[], {}, {}]",
        content_type="application/json",
        content_encoding="utf-8",
        headers={"task": "t", "id": str(i)},
        properties={"delivery_mode": 2},
    )


@contextmanager
def windowed(window: int = 100) -> Iterator[AmqpTransport]:
    """A transport on the test RabbitMQ publishing with ``window`` confirms outstanding."""
    require("rabbitmq")
    t = AmqpTransport(AMQP_URL)
    t.set_publish_window(window)
    t.connect()
    try:
        yield t
    finally:
        t.close()
