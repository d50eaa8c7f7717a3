"""The Redis transport: Kombu's lists, priority sub-lists and bindings (SPEC.md §6.3)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes.redis import PRIORITY_SEP

from ..base import QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..errors import BrokerUnavailable, TransportError
from ..registry import redact_url
from .consumer import RedisConsumer
from .keys import Keys, escape_glob
from .options import make_client, parse_options
from .restore import Restorer
from .scripts import FETCH, PUBLISH_DELAYED, SET_RAW, SETTLE
from .sender import Sender

__all__ = ["RedisSubscription", "RedisTransport"]

log = logging.getLogger("celeriac.transports.redis")
_pack = json_envelope.pack_wire


class RedisTransport(Transport):
    """``redis://[:password@]host:port/db``; ``rediss://`` for TLS.

    Options (keyword or URL query): ``visibility_timeout`` (s, default 60): how soon a dead
    Celeriac consumer's deliveries come back; ``kombu_visibility_timeout`` (s, default 3600):
    the same for deliveries a Kombu (Celery) consumer left; Kombu's ``global_keyprefix``,
    ``unacked_key``, ``unacked_index_key``, ``unacked_mutex_key``, ``unacked_mutex_expire``,
    ``priority_steps``, ``fanout_prefix``; redis-py's ``socket_timeout``, ``ssl_cert_reqs``...;
    ``publish_window`` (default 0): see ``Transport.flush``.
    """

    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss")
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

    #: Errors that mean "the server went away or the topology changed": retried, never fatal.
    #: ``READONLY``: the server we are on was made a replica (a failover).
    topology_errors: ClassVar[tuple[type[Exception], ...]] = (
        redis.ConnectionError,
        redis.TimeoutError,
        redis.ReadOnlyError,
    )
    #: Whether a consumer drops a broken wake-up subscription and subscribes again (redis-py's
    #: own reconnects a plain one).
    resubscribes: ClassVar[bool] = False

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.settings, self._client_url, self._client_extra = parse_options(url, options)
        parts = urlsplit(url)
        try:
            self.address = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
            db = int(parts.path.strip("/") or 0)
        except ValueError as exc:
            raise TransportError(
                f"bad Redis URL {redact_url(url)!r} ({exc}); write it as "
                "redis://[:password@]host:port/db"
            ) from None
        self.keys = Keys(self.settings, db)
        self.client: redis.Redis | None = None

    # -- connection -----------------------------------------------------------------------------
    def connect(self) -> None:
        if self.client is not None:
            return
        self._check_reachable()
        client = self._make_client()
        self.fetch_script = client.register_script(FETCH)
        self.settle_script = client.register_script(SETTLE)
        self.delayed_script = client.register_script(PUBLISH_DELAYED)
        self.set_raw_script = client.register_script(SET_RAW)
        self._attach(client)
        self.client = client

    def _attach(self, client: redis.Redis) -> None:
        """Make what works beside a new client: here the restorer and the publishing
        connection (a subclass that publishes otherwise makes its own)."""
        self.restorer = Restorer(client, self.keys, self.settings)
        self.sender = Sender(client, self.settings.publish_window)

    def keys_for(self, queue: str) -> Keys:
        """The names of ``queue``'s keys (one set for every queue on a single server)."""
        return self.keys

    def restorer_for(self, keys: Keys) -> Restorer:
        """The restorer of the bookkeeping ``keys`` name."""
        return self.restorer

    def _make_client(self) -> redis.Redis:
        return make_client(self._client_url, self._client_extra)

    def _check_reachable(self) -> None:
        """One quick PING (no retries), so a wrong address fails at once and clearly."""
        extra = {
            "socket_connect_timeout": 5.0,
            **self._client_extra,
            "retry": Retry(NoBackoff(), 0),
        }
        probe = redis.Redis.from_url(self._client_url, **extra)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe.ping()
                    return
                except redis.BusyLoadingError:
                    # A server that just restarted answers LOADING until its data is read.
                    if time.monotonic() >= deadline:
                        raise
                    probe.connection_pool.disconnect()
                    time.sleep(0.2)
        except redis.AuthenticationError as exc:
            raise BrokerUnavailable(
                f"Redis at {self.address} refused the credentials of "
                f"{redact_url(self.url)!r} ({exc}); check the password (and user name)"
            ) from None
        except redis.RedisError as exc:
            raise BrokerUnavailable(
                f"Redis at {self.address} ({redact_url(self.url)!r}) is unreachable or refused "
                f"us ({exc}); is it running, and are the host, port, password and database "
                "number right?"
            ) from None
        finally:
            probe.close()

    def connected(self) -> redis.Redis:
        """The client, connecting on first use."""
        if self.client is None:
            self.connect()
        assert self.client is not None
        return self.client

    def unavailable(self, what: str, exc: Exception) -> BrokerUnavailable:
        """The error for an operation the broker did not answer, naming it and the host."""
        return BrokerUnavailable(
            f"Redis at {self.address}: could not {what} ({exc}); is the server up and "
            "reachable? The next call reconnects by itself."
        )

    @contextlib.contextmanager
    def errors(self, what: str, *, topology: bool = True) -> Iterator[None]:
        """Turn redis-py's errors into ours, naming the operation and the server; with
        ``topology=False`` the "topology changed" errors pass through unchanged."""
        try:
            yield
        except self.topology_errors as exc:
            self.topology_changed(exc)
            if not topology:
                raise
            raise self.unavailable(what, exc) from exc
        except redis.RedisError as exc:
            raise TransportError(f"Redis at {self.address}: could not {what}: {exc}") from exc

    def topology_changed(self, exc: Exception) -> None:
        """After ``READONLY`` (our server was made a replica), drop our connections: the next
        call reconnects (through Sentinel, to the master). Other errors reconnect by themselves."""
        if isinstance(exc, redis.ReadOnlyError) and self.client is not None:
            self.client.connection_pool.disconnect()

    def set_publish_window(self, window: int) -> int:
        previous = self.settings.publish_window
        self.settings = dataclasses.replace(self.settings, publish_window=window)
        if self.client is not None:
            self.sender.window = window
        return previous

    def flush(self) -> None:
        if self.client is not None:
            with self.errors("confirm earlier publishes"):
                self.sender.flush()

    def close(self) -> None:
        if self.client is not None:
            try:
                with self.errors("confirm earlier publishes"):
                    self.sender.flush_all()
            finally:
                self.client.close()
            self.client = None

    # -- queues ---------------------------------------------------------------------------------
    def declare_queue(self, spec: QueueSpec) -> None:
        """Lists need no declaring; the bindings Celery declares for a queue are added, so a
        Kombu producer routing through the queue's direct exchange reaches it too."""
        client = self.connected()
        with self.errors(f"declare queue {spec.name!r}"):
            pipe = client.pipeline(transaction=False)
            for name in (spec.name, spec.dead_letter_queue):
                member = PRIORITY_SEP.join((name, "", name))
                keys = self.keys_for(name)
                pipe.sadd(keys.binding(name), member)
                pipe.sadd(keys.binding_permanent(name), member)
            pipe.execute()

    def declare_reply_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """A Kombu binding, so a Celery worker's reply to ``exchange``/``routing_key`` lands in
        list ``queue``."""
        with self.errors(f"declare reply queue {queue!r}"):
            member = PRIORITY_SEP.join((routing_key, "", queue))
            self.connected().sadd(self.keys.binding(exchange), member)

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        self.publish_many(queue, [message], delay=delay)

    def publish_many(
        self, queue: str, messages: Sequence[WireMessage], delay: float | None = None
    ) -> None:
        """One round trip: LPUSH per priority list and a wake-up poke, or one delayed ZADD."""
        if not messages:
            return
        self.connected()
        keys = self.keys_for(queue)
        with self.errors(f"publish to queue {queue!r}"):
            if delay is not None and delay > 0:
                envelopes = [_pack(m, routing_key=queue) for m in messages]
                self.delayed_script(keys=[keys.delayed(queue)], args=[delay, *envelopes])
                return
            lists: dict[str, list[bytes]] = {}
            for m in messages:
                target = keys.ready(queue, m.properties.get("priority"))
                lists.setdefault(target, []).append(_pack(m, routing_key=queue))
            self._push(lists, keys.wake(queue), len(messages))

    def _push(self, lists: dict[str, list[bytes]], wake: str, messages: int) -> None:
        """LPUSH each list's envelopes, then poke ``wake``: one round trip."""
        commands: list[tuple[Any, ...]] = [
            ("LPUSH", target, *envelopes) for target, envelopes in lists.items()
        ]
        commands.append(("PUBLISH", wake, b""))
        self.sender.send(commands, messages)

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> RedisConsumer:
        return RedisConsumer(self, queues, prefetch)

    def purge(self, queue: str) -> int:
        lists = self.keys_for(queue).ready_lists(queue)
        with self.errors(f"purge queue {queue!r}"):
            pipe = self.connected().pipeline(transaction=True)
            for key in lists:
                pipe.llen(key)
            pipe.delete(*lists)
            return int(sum(pipe.execute()[: len(lists)]))

    def queue_length(self, queue: str) -> int:
        with self.errors(f"count queue {queue!r}"):
            pipe = self.connected().pipeline(transaction=False)
            for key in self.keys_for(queue).ready_lists(queue):
                pipe.llen(key)
            return int(sum(pipe.execute()))

    # -- broadcast ------------------------------------------------------------------------------
    def broadcast(self, exchange: str, message: WireMessage) -> None:
        # Kombu's fanout patterns: a routed message (Celery's events: "task.succeeded") goes to
        # "<exchange>/<routing key>", where Celery's event receivers listen ("/0.celeryev/*").
        key = str(message.headers.get("routing_key") or "")
        channel = self.keys.fanout(exchange) + (f"/{key}" if key else "")
        envelope = _pack(message, exchange=exchange, routing_key=key)
        with self.errors(f"broadcast to {exchange!r}"):
            self.connected().publish(channel, envelope)

    def subscribe(self, exchange: str) -> Subscription:
        return RedisSubscription(self, exchange)


class RedisSubscription(Subscription):
    """PSUBSCRIBE to Kombu's fanout channels of an exchange, as a Kombu consumer bound with
    ``#`` does: the exchange's own channel and its routed ones (``<exchange>/<routing key>``)."""

    def __init__(self, transport: RedisTransport, exchange: str) -> None:
        self.transport = transport
        self.exchange = exchange
        self.pubsub = transport.connected().pubsub()  # type: ignore[no-untyped-call,unused-ignore]
        channel = escape_glob(transport.keys.fanout(exchange))
        patterns = (channel, f"{channel}/*")
        with transport.errors(f"subscribe to {exchange!r}"):
            self.pubsub.psubscribe(*patterns)
            # Registered once the server confirms: a broadcast sent after this returns is ours.
            confirmed = [self.pubsub.get_message(timeout=5.0) for _ in patterns]
        if any(c is None or c.get("type") != "psubscribe" for c in confirmed):
            raise transport.unavailable(f"subscribe to {exchange!r}", TimeoutError("no reply"))

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            with self.transport.errors(f"receive from {self.exchange!r}"):
                message = self.pubsub.get_message(timeout=left)  # type: ignore[arg-type,unused-ignore]
            if message is not None and message.get("type") == "pmessage":
                try:
                    wire, _ = json_envelope.unpack_wire(message["data"])
                    return wire
                except ProtocolError as exc:
                    log.warning(
                        "Redis at %s: unreadable broadcast on %r skipped: %s (%d bytes)",
                        self.transport.address,
                        self.exchange,
                        exc,
                        len(message["data"]),
                    )
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        self.pubsub.close()
