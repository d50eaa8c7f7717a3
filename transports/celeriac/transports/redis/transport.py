"""The Redis transport and its consumer (SPEC.md §6.3)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes.redis import DEFAULT_PRIORITY_STEPS, PRIORITY_SEP, list_key

from ..base import Consumer, Delivery, QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..dead_letter import dead_letter_message
from ..errors import BrokerUnavailable
from ..registry import redact_url
from .scripts import FETCH, RESTORE, SETTLE

__all__ = ["RedisTransport"]

UNACKED, UNACKED_INDEX, UNACKED_MUTEX = "unacked", "unacked_index", "unacked_mutex"
OWNERS, RAW = "celeriac.unacked.owner", "celeriac.unacked.raw"
# Seconds a tag must go un-renewed before a restore pass asks whether its owner is alive.
_IDLE_WINDOW = 1.0


def _delayed_key(prefix: str, queue: str) -> str:
    return f"{prefix}celeriac.delayed.{queue}"


def _wake_channel(prefix: str, queue: str) -> str:
    return f"{prefix}celeriac.wake.{queue}"


class RedisTransport(Transport):
    """``redis://[:password@]host:port/db``; ``rediss://`` for TLS.

    Options (keyword or URL query): ``visibility_timeout`` (s, default 60): how long a dead
    Celeriac consumer's deliveries wait before they come back; ``kombu_visibility_timeout`` (s,
    default 3600): the same for deliveries a Kombu (Celery) consumer left; ``global_keyprefix``.
    """

    schemes = ("redis", "rediss")
    capabilities = Capabilities(
        priorities=True,
        priority_order="lower-first",
        delayed_delivery=True,
        fanout=True,
        per_message_ack=True,
        redelivery="heartbeat",
        ordering="fifo",
        shared=True,
        max_message_bytes=512 * 1024 * 1024,
    )

    def __init__(self, url: str, **options: Any) -> None:
        query = dict(parse_qsl(urlsplit(url).query))
        options = {**query, **options}
        super().__init__(url, **options)
        self.visibility_timeout = float(options.get("visibility_timeout", 60.0))
        self.kombu_visibility_timeout = float(options.get("kombu_visibility_timeout", 3600.0))
        self.prefix = str(options.get("global_keyprefix", ""))
        self.db = int((urlsplit(url).path or "/0").strip("/") or 0)
        self.client: redis.Redis | None = None

    def connect(self) -> None:
        if self.client is not None:
            return
        base = self.url.split("?", 1)[0]
        try:
            client = redis.Redis.from_url(
                base, socket_connect_timeout=5, health_check_interval=10, retry_on_timeout=True
            )
            client.ping()
        except redis.RedisError as exc:
            raise BrokerUnavailable(
                f"Redis at {redact_url(base)} is unreachable ({exc}); is it running, and are the "
                "host, port, password and database right?"
            ) from exc
        self.client = client
        self.fetch_script = client.register_script(FETCH)
        self.restore_script = client.register_script(RESTORE)
        self.settle_script = client.register_script(SETTLE)

    def redis(self) -> redis.Redis:
        """The client, connecting on first use."""
        self.connect()
        assert self.client is not None
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def key(self, name: str) -> str:
        return self.prefix + name

    def declare_queue(self, spec: QueueSpec) -> None:
        """Lists need no declaring; this checks the connection."""
        self.redis()

    def _envelope(self, queue: str, wire: WireMessage) -> bytes:
        return json_envelope.pack_wire(wire, routing_key=queue, delivery_tag=str(uuid.uuid4()))

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        self.publish_many(queue, [message], delay=delay)

    def publish_many(
        self, queue: str, messages: Sequence[WireMessage], delay: float | None = None
    ) -> None:
        pipe = self.redis().pipeline(transaction=False)
        if delay and delay > 0:
            due = time.time() + delay
            pipe.zadd(
                _delayed_key(self.prefix, queue), {self._envelope(queue, m): due for m in messages}
            )
        else:
            for m in messages:
                pipe.lpush(
                    self.key(list_key(queue, m.properties.get("priority"))),
                    self._envelope(queue, m),
                )
            pipe.publish(_wake_channel(self.prefix, queue), b"")
        pipe.execute()

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        return RedisConsumer(self, queues, prefetch)

    def _lists(self, queue: str) -> list[str]:
        return [
            self.key(queue if s == 0 else f"{queue}{PRIORITY_SEP}{s}")
            for s in DEFAULT_PRIORITY_STEPS
        ]

    def purge(self, queue: str) -> int:
        pipe = self.redis().pipeline(transaction=True)
        for k in self._lists(queue):
            pipe.llen(k)
        for k in self._lists(queue):
            pipe.delete(k)
        return int(sum(pipe.execute()[: len(DEFAULT_PRIORITY_STEPS)]))

    def queue_length(self, queue: str) -> int:
        pipe = self.redis().pipeline(transaction=False)
        for k in self._lists(queue):
            pipe.llen(k)
        return int(sum(pipe.execute()))

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        # Kombu's fanout channel: /<db>.<exchange> (SPEC.md §6.3)
        self.redis().publish(self.key(f"/{self.db}.{exchange}"), self._envelope("", message))

    def subscribe(self, exchange: str) -> Subscription:
        return RedisSubscription(self, exchange)


class RedisConsumer(Consumer):
    """Batch fetch by Lua; holds renewed on every fetch; idle waits on a wake-up channel."""

    def __init__(self, transport: RedisTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.t = transport
        self.client = transport.redis()
        self.id = uuid.uuid4().hex
        self.unsettled: dict[str, Delivery] = {}
        p = transport.key
        self.meta_keys = [p(UNACKED), p(UNACKED_INDEX), p(OWNERS), p(RAW)]
        # Kombu's serving order: every queue's step-0 list, then step 3, and so on.
        self.lists = [
            p(q if s == 0 else f"{q}{PRIORITY_SEP}{s}")
            for s in DEFAULT_PRIORITY_STEPS
            for q in self.queues
        ]
        self.delayed = [_delayed_key(transport.prefix, q) for q in self.queues]
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(*[_wake_channel(transport.prefix, q) for q in self.queues])
        self._next_restore = 0.0

    def _housekeep(self, now: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        if self.unsettled:  # alive: re-score the holds so no restore takes them
            pipe.zadd(self.meta_keys[1], {tag: now for tag in self.unsettled}, xx=True)
        pipe.set(
            self.t.key(f"celeriac.alive.{self.id}"), 1, px=int(self.t.visibility_timeout * 1000)
        )
        pipe.execute()
        if now >= self._next_restore:
            self._next_restore = now + min(max(self.t.visibility_timeout / 4, 0.25), 5.0)
            lock = self.client.set(self.t.key(UNACKED_MUTEX), self.id, nx=True, px=30_000)
            if lock:
                try:
                    self.t.restore_script(
                        keys=self.meta_keys,
                        args=[now, _IDLE_WINDOW, self.t.kombu_visibility_timeout, self.t.prefix],
                    )
                finally:
                    self.client.delete(self.t.key(UNACKED_MUTEX))

    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.time()
            self._housekeep(now)
            room = min(max_messages, self.prefetch - len(self.unsettled))
            if room <= 0:
                return []
            rows = self.t.fetch_script(
                keys=[*self.meta_keys, *self.lists],
                args=[
                    room,
                    now,
                    self.id,
                    self.t.prefix,
                    len(self.queues),
                    *self.queues,
                    *self.delayed,
                ],
            )
            if rows:
                return [self._delivery(tag, int(k), env) for tag, k, env in rows]
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return []
            # Woken by our own publishers at once; Celery's do not announce, so poll too.
            self.pubsub.get_message(timeout=min(left if left is not None else 0.1, 0.1))

    def _delivery(self, tag: bytes, key_index: int, envelope: bytes) -> Delivery:
        name = tag.decode()
        list_name = self.lists[key_index - 1 - len(self.meta_keys)]
        queue = list_name[len(self.t.prefix) :].split(PRIORITY_SEP, 1)[0]
        try:
            wire, info = json_envelope.unpack_wire(envelope)
            d = Delivery(queue, wire, name, info.redelivered, raw=envelope)
        except ProtocolError as exc:
            d = Delivery(queue, None, name, False, raw=envelope, error=exc)
        self.unsettled[name] = d
        return d

    def _settle(
        self, tags: list[str], mode: str = "ack", target: str = "", env: bytes = b""
    ) -> None:
        keys = [*self.meta_keys] + ([target] if target else [])
        self.t.settle_script(keys=keys, args=[mode, env, *tags])
        for tag in tags:
            self.unsettled.pop(tag, None)

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        tags = [d.tag for d in deliveries if d.tag in self.unsettled]
        if tags:
            self._settle(tags)

    def reject(self, delivery: Delivery, reason: str) -> None:
        if delivery.tag not in self.unsettled:
            return
        dead = QueueSpec(delivery.queue).dead_letter_queue
        env = self.t._envelope(dead, dead_letter_message(delivery, reason))
        self._settle([delivery.tag], "push", self.t.key(dead), env)

    def requeue(self, delivery: Delivery, front: bool = False) -> None:
        if delivery.tag not in self.unsettled:
            return
        if delivery.message is None:
            env, target = delivery.raw or b"", self.t.key(delivery.queue)
        else:
            headers = {**delivery.message.headers, "redelivered": True}
            wire = WireMessage(
                delivery.message.body,
                delivery.message.content_type,
                delivery.message.content_encoding,
                headers,
                delivery.message.properties,
            )
            env = json_envelope.pack_wire(
                wire, routing_key=delivery.queue, delivery_tag=delivery.tag
            )
            target = self.t.key(list_key(delivery.queue, wire.properties.get("priority")))
        self._settle([delivery.tag], "rpush" if front else "push", target, env)

    def close(self) -> None:
        try:
            for delivery in list(self.unsettled.values()):
                self.requeue(delivery, front=True)
            self.client.delete(self.t.key(f"celeriac.alive.{self.id}"))
        finally:
            self.pubsub.close()


class RedisSubscription(Subscription):
    """PSUBSCRIBE to Kombu's fanout channel of an exchange."""

    def __init__(self, transport: RedisTransport, exchange: str) -> None:
        self.pubsub = transport.redis().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self.pubsub.psubscribe(transport.key(f"/{transport.db}.{exchange}"))
        # Registered once the server confirms it: read the confirmation before any broadcast.
        self.pubsub.get_message(timeout=2.0)

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        message = self.pubsub.get_message(timeout=timeout or 0.0)
        if message is None or message.get("type") not in ("message", "pmessage"):
            return None
        try:
            wire, _ = json_envelope.unpack_wire(message["data"])
        except ProtocolError:
            return None
        return wire

    def close(self) -> None:
        self.pubsub.close()
