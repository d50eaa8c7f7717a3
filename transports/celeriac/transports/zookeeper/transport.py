"""The ZooKeeper transport: Kombu's kazoo queue nodes, with claims, delays and broadcast added."""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    KazooException,
    NoAuthError,
    NoNodeError,
    RolledBackError,
)

from celeriac.protocol import WireMessage
from celeriac.protocol.envelopes import zookeeper as envelope

from ..base import Consumer, QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..errors import BrokerUnavailable, TransportError
from .broadcast import BROADCAST_TTL, ZooKeeperSubscription, sweep
from .claims import claim, strays
from .client import batches, delete_all, gather, guarded, open_client, where
from .consumer import ZooKeeperConsumer
from .counts import sweep as sweep_counts
from .options import MAX_NODE_BYTES, ZooKeeperOptions, parse_options
from .paths import Layout

__all__ = ["MAX_NODE_BYTES", "ZooKeeperOptions", "ZooKeeperTransport"]


class ZooKeeperTransport(Transport):
    """``zookeeper://host:2181[,host:2181...]/<base>``: queues as in Kombu, claims per session.

    Options (query string or keywords, see :class:`ZooKeeperOptions`): ``connect_timeout``,
    ``session_timeout`` (how soon a dead consumer's items come back), ``op_timeout`` and
    ``max_message_bytes``. ``visibility_timeout`` is accepted and unused: a claim lasts as long
    as its consumer's session.
    """

    schemes = ("zookeeper",)
    capabilities = Capabilities(
        priorities=True,
        priority_order="higher-first",
        delayed_delivery=True,
        fanout=False,  # emulated: sequential nodes every subscriber reads, kept BROADCAST_TTL
        per_message_ack=True,
        redelivery="connection",
        ordering="fifo",
        shared=True,
        max_message_bytes=MAX_NODE_BYTES,
    )
    # Every delivery is counted in a persistent node beside the item (counts.py), so an item
    # whose consumer's session ended (its claim simply gone) still comes back counted.
    counts_redeliveries = True

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.layout = Layout(url)
        self.where = where(url)
        self.settings = parse_options(url, options)
        self.max_message_bytes = self.settings.max_message_bytes
        self.client: KazooClient | None = None
        self._ensured: set[str] = set()
        self._swept: dict[str, float] = {}
        self._consumers: weakref.WeakSet[ZooKeeperConsumer] = weakref.WeakSet()

    def connect(self) -> None:
        if self.client is not None:
            return
        client = self.open_session()
        try:
            client.retry(client.ensure_path, self.layout.root)
            # ensure_path succeeds on a node that exists whatever its ACL: read it, so a client
            # without the owner's credentials is refused here and not at its first publish
            client.retry(client.get_children, self.layout.root)
        except AuthFailedError:
            client.stop()
            client.close()
            mechanism = self.settings.sasl_mechanism or "digest"
            raise BrokerUnavailable(
                f"{self.where}: authentication failed (AuthFailedError): the server refused the "
                f"URL's user and password ({mechanism})"
            ) from None
        except NoAuthError:
            client.stop()
            client.close()
            raise BrokerUnavailable(
                f"{self.where}: not allowed to read {self.layout.root} (NoAuthError): its ACL "
                "admits other credentials; give the user and password that created it in the "
                "URL (zookeeper://user:password@host:2181/path)"
            ) from None
        except KazooException as exc:
            client.stop()
            client.close()
            raise BrokerUnavailable(
                f"{self.where}: cannot create the base node {self.layout.root}: "
                f"{type(exc).__name__} {exc}; check the URL's path and the server's ACLs"
            ) from None
        self.client = client

    def open_session(self) -> KazooClient:
        """A new started client (a session of its own) with this transport's options."""
        return open_client(
            self.url,
            connect_timeout=self.settings.connect_timeout,
            session_timeout=self.settings.session_timeout,
            op_timeout=self.settings.op_timeout,
            options=self.settings,
        )

    def client_or_raise(self) -> KazooClient:
        if self.client is None:
            raise TransportError(f"{self.where}: not connected; call connect() first")
        return self.client

    def close(self) -> None:
        # Each consumer's session ends with it: its unsettled items are ready again.
        for consumer in list(self._consumers):
            consumer.close()
        client, self.client = self.client, None
        self._ensured.clear()
        if client is not None:
            client.stop()
            client.close()

    def ensure_queue(self, queue: str, *, again: bool = False) -> None:
        """Create the nodes ``queue`` needs (once per transport unless ``again``)."""
        if queue in self._ensured and not again:
            return
        client = self.client_or_raise()
        for path in self.layout.structure(queue):
            client.retry(client.ensure_path, path)
        self._ensured.add(queue)

    @guarded
    def declare_queue(self, spec: QueueSpec) -> None:
        self.ensure_queue(spec.name)
        self.ensure_queue(spec.dead_letter_queue)

    def _data(self, queue: str, message: WireMessage, exchange: str = "") -> bytes:
        data = envelope.pack_wire(message, exchange=exchange, routing_key=queue)
        if len(data) > self.max_message_bytes:
            raise TransportError(
                f"{self.where}: message for {queue!r} is {len(data)} bytes in its envelope, over "
                f"the {self.max_message_bytes}-byte limit of a ZooKeeper node (the server's "
                "jute.maxbuffer); compress it (apply_async(compression='zlib'), or the "
                "task_compression setting) or pass a reference to the data (a URL or a key) "
                "instead of the data itself"
            )
        return data

    def _item(self, queue: str, message: WireMessage, delay: float | None) -> str:
        priority = envelope.message_priority(message.properties)
        if delay is not None and delay > 0:
            due_ms = int((time.time() + delay) * 1000)
            return f"{self.layout.delayed(queue)}/{envelope.delayed_prefix(due_ms, priority)}"
        return f"{self.layout.queue(queue)}/{envelope.entry_prefix(priority)}"

    @guarded
    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        data = self._data(queue, message)
        self.ensure_queue(queue)
        client = self.client_or_raise()
        path = self._item(queue, message, delay)
        try:
            client.retry(client.create, path, data, sequence=True)
        except NoNodeError:  # the queue's nodes were deleted since we made them
            self.ensure_queue(queue, again=True)
            client.retry(client.create, path, data, sequence=True)

    @guarded
    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        items = [(self._item(queue, m, None), self._data(queue, m)) for m in messages]
        self.ensure_queue(queue)
        client = self.client_or_raise()
        # Multi requests: one server write per run instead of one per message, in order.
        for run in batches(items, size=lambda item: len(item[1])):
            try:
                client.retry(_create_all, client, run)
            except NoNodeError:  # the queue's nodes were deleted since we made them
                self.ensure_queue(queue, again=True)
                client.retry(_create_all, client, run)

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        consumer = ZooKeeperConsumer(self, queues, prefetch)
        self._consumers.add(consumer)
        return consumer

    def _ready(self, queue: str) -> list[str]:
        """The items of ``queue`` that no consumer holds."""
        self.ensure_queue(queue)
        client = self.client_or_raise()

        def look() -> list[str]:
            items, claims = gather(
                [
                    client.get_children_async(self.layout.queue(queue)),
                    client.get_children_async(self.layout.claims(queue)),
                ]
            )
            for result in (items, claims):
                if isinstance(result, Exception):
                    raise result
            held = set(claims)
            return [n for n in items if envelope.parse_entry(n) is not None and n not in held]

        ready: list[str] = client.retry(look)
        return ready

    @guarded
    def queue_length(self, queue: str) -> int:
        return len(self._ready(queue))

    @guarded
    def purge(self, queue: str) -> int:
        client = self.client_or_raise()
        # Claim first, so an item a consumer claims meanwhile is left to it.
        won, unsure, _ = claim(client, self.layout, [(queue, name) for name in self._ready(queue)])
        if unsure:  # consumers have sessions of their own: every claim of this one is purge's
            known = {name for _, name, _ in won}
            for path in strays(client, self.layout, queue, known):
                won.append((queue, path.rsplit("/", 1)[1], path))
        paths = [f"{self.layout.queue(queue)}/{name}" for _, name, _ in won]
        delete_all(client, paths + [path for _, _, path in won])
        # The counts of the items delivered before (the others have none: no failing multi).
        counted = set(client.retry(client.get_children, self.layout.counts(queue)))
        sweep_counts(client, self.layout, queue, [n for _, n, _ in won if n in counted])
        return len(paths)

    @guarded
    def broadcast(self, exchange: str, message: WireMessage) -> None:
        client = self.client_or_raise()
        folder = self.layout.broadcast(exchange)
        data = self._data(exchange, message, exchange=exchange)
        if folder not in self._ensured:
            client.retry(client.ensure_path, folder)
            self._ensured.add(folder)
        now = time.time()
        name = envelope.broadcast_prefix(int(now * 1000))
        client.retry(client.create, f"{folder}/{name}", data, sequence=True)
        if now - self._swept.get(folder, 0.0) > BROADCAST_TTL / 4:
            self._swept[folder] = now
            sweep(client, folder, int(now * 1000))

    @guarded
    def subscribe(self, exchange: str) -> Subscription:
        return ZooKeeperSubscription(self, exchange)


def _create_all(client: KazooClient, items: list[tuple[str, bytes]]) -> None:
    tx = client.transaction()
    for path, data in items:
        tx.create(path, data, sequence=True)
    results = tx.commit()
    # A failed multi reports RolledBackError for every operation but the one that failed.
    for result in results:
        if isinstance(result, Exception) and not isinstance(result, RolledBackError):
            raise result
