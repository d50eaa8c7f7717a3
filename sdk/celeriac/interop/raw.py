"""Take messages off a broker exactly as a foreign client left them (no decoding here).

Redis and RabbitMQ are read with their plain clients, so the verifier sees the list key and the
AMQP properties untouched; other brokers go through Celeriac's transport, whose deliveries keep
the envelope bytes. Every read is bounded by its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from .checks import RawMessage, now_utc

__all__ = ["RawReader", "open_reader"]

_STEPS = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class RawReader:
    broker = ""

    def read(self, timeout: float) -> RawMessage | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def drain(self, timeout: float) -> Iterator[RawMessage]:
        """Messages until one read waits ``timeout`` seconds in vain."""
        while (msg := self.read(timeout)) is not None:
            yield msg


class RedisReader(RawReader):
    broker = "redis"

    def __init__(self, url: str, queue: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.queue = queue
        self.keys = [queue + s for s in _STEPS]

    def read(self, timeout: float) -> RawMessage | None:
        got = self.client.brpop(self.keys, timeout=max(1, round(timeout)))
        if got is None:
            return None
        key, data = got
        return RawMessage(
            "json",
            self.queue,
            now_utc(),
            data=data if isinstance(data, bytes) else str(data).encode(),
            broker="redis",
            list_key=key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key),
        )

    def close(self) -> None:
        self.client.close()


#: The basic properties a reader keeps of an AMQP delivery, as it found them.
AMQP_FIELDS = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)


class AmqpReader(RawReader):
    broker = "amqp"

    def __init__(self, url: str, queue: str) -> None:
        import pika

        parsed = urlparse(url)
        vhost = parsed.path[1:] if parsed.path not in ("", "/") else "/"
        params = pika.ConnectionParameters(
            host=parsed.hostname or "localhost",
            port=parsed.port or 5672,
            virtual_host=vhost or "/",
            credentials=pika.PlainCredentials(
                parsed.username or "guest", parsed.password or "guest"
            ),
            blocked_connection_timeout=30,
        )
        self.conn = pika.BlockingConnection(params)
        self.channel = self.conn.channel()
        self.channel.queue_declare(queue, durable=True)
        self.queue = queue
        # One consumer for the reader's life: every delivery reaches read(), none is dropped.
        self._deliveries = self.channel.consume(queue, auto_ack=True, inactivity_timeout=0.2)

    def read(self, timeout: float) -> RawMessage | None:
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = next(self._deliveries)
            if method is not None:
                break
            if time.monotonic() >= deadline:
                return None
        self.delivered(method)
        fields: dict[str, Any] = {name: getattr(props, name) for name in AMQP_FIELDS}
        return RawMessage(
            "amqp", self.queue, now_utc(), data=bytes(body), amqp_properties=fields, broker="amqp"
        )

    def delivered(self, method: Any) -> None:
        """Called with each delivery's method frame (a capture keeps its exchange and key)."""

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


class TransportReader(RawReader):
    """Any other broker through Celeriac's transport (the delivery keeps the envelope bytes)."""

    def __init__(self, url: str, queue: str) -> None:
        from celeriac.transports import QueueSpec, open_transport

        self.broker = urlparse(url).scheme
        self.transport = open_transport(url)
        self.transport.declare_queue(QueueSpec(queue))
        self.consumer = self.transport.consumer([queue], prefetch=1)
        self.consumer.__enter__()
        self.queue = queue

    def read(self, timeout: float) -> RawMessage | None:
        got = self.consumer.fetch(1, timeout=timeout)
        if not got:
            return None
        d = got[0]
        self.consumer.ack(got)
        data = d.raw
        if data is None and d.message is not None:  # the transport kept no bytes: rebuild
            from celeriac.protocol.envelopes import json_envelope

            data = json_envelope.pack_wire(d.message, routing_key=self.queue)
        return RawMessage(
            "json", self.queue, now_utc(), data=bytes(data or b""), broker=self.broker
        )

    def close(self) -> None:
        self.consumer.__exit__(None, None, None)
        self.transport.close()


def open_reader(url: str, queue: str) -> RawReader:
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return RedisReader(url, queue)
    if scheme in ("amqp", "amqps"):
        return AmqpReader(url, queue)
    return TransportReader(url, queue)
