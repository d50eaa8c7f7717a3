"""What the RabbitMQ transport tests share: a small task message, a connected transport with a
publish window, and pika's own table module unpatched."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import pika.data

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


def pristine_pika_tables() -> ModuleType:
    """A fresh copy of pika's table module, as pika ships it: its functions call each other,
    not the float patch Celeriac installs (so floats are refused, as pika refuses them)."""
    spec = importlib.util.spec_from_file_location("pika_data_pristine", pika.data.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
