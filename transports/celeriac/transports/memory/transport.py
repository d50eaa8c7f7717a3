"""The memory transport, its consumer and its broadcast subscription."""

from __future__ import annotations

import heapq
import itertools
import queue as queue_module
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, Delivery, QueueSpec, Subscription, Transport, dead_letter_queue
from ..capabilities import Capabilities
from ..dead_letter import dead_letter_message
from ..errors import TransportError
from .broker import Broker, Holder, Message, broker_for

__all__ = ["MemoryConsumer", "MemorySubscription", "MemoryTransport"]

_owners = itertools.count(1)


def _priority(wire: WireMessage) -> int:
    value = wire.properties.get("priority")
    return value if isinstance(value, int) else 0


def _pack(queue: str, wire: WireMessage, exchange: str = "") -> bytes:
    # Real §6.1 envelope bytes, so everything built on this double exercises the envelope path.
    return json_envelope.pack_wire(wire, exchange=exchange, routing_key=queue)


class MemoryTransport(Transport):
    """``memory://[name]``: every transport with the same URL in this process shares one broker.

    Option ``visibility_timeout`` (seconds, default: none): deliveries of a consumer that has not
    called fetch for that long go back to their queues, as if its process had died.
    """

    schemes = ("memory",)
    capabilities = Capabilities(
        priorities=True,
        priority_order="higher-first",
        delayed_delivery=True,
        fanout=True,
        per_message_ack=True,
        redelivery="visibility-timeout",
        ordering="fifo",
        shared=False,
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.broker: Broker = broker_for(url)
        vt = options.get("visibility_timeout")
        self.visibility_timeout: float | None = None if vt is None else float(vt)

    def connect(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to close: the queues live as long as the process."""

    def declare_queue(self, spec: QueueSpec) -> None:
        self.broker.declare(spec.name)
        self.broker.declare(spec.dead_letter_queue)

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        envelope = _pack(queue, message)
        ready_at = time.monotonic() + (delay if delay and delay > 0 else 0.0)
        with self.broker.lock:
            self.broker.put(
                queue, self.broker.message(envelope, _priority(message), ready_at), delay
            )

    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        envelopes = [(_pack(queue, m), _priority(m)) for m in messages]
        now = time.monotonic()
        with self.broker.lock:
            self.broker.heap(queue)  # refuse the whole batch before putting any of it
            for envelope, priority in envelopes:
                self.broker.put(queue, self.broker.message(envelope, priority, now))

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        return MemoryConsumer(self, queues, prefetch)

    def purge(self, queue: str) -> int:
        with self.broker.lock:
            self.broker.housekeep(time.monotonic())
            heap = self.broker.queues.get(queue)
            if not heap:
                return 0
            count = len(heap)
            heap.clear()
            return count

    def queue_length(self, queue: str) -> int:
        with self.broker.lock:
            self.broker.housekeep(time.monotonic())
            return len(self.broker.queues.get(queue, ()))

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        self.broker.broadcast(exchange, _pack("", message, exchange))

    def subscribe(self, exchange: str) -> Subscription:
        return MemorySubscription(self.broker, exchange)


class MemoryConsumer(Consumer):
    """Takes messages off the heaps; what it holds goes back on close, collection or lapse."""

    def __init__(self, transport: MemoryTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.broker = transport.broker
        self.visibility_timeout = transport.visibility_timeout
        self.owner = next(_owners)
        self._turn = 0
        with self.broker.lock:
            for name in self.queues:
                self.broker.heap(name)
            self.holder = Holder(self._deadline(time.monotonic()))
            self.broker.holders[self.owner] = self.holder
        # A consumer dropped without close() still gives its deliveries back.
        self._finalizer = weakref.finalize(self, self.broker.abandon, self.owner)

    def _deadline(self, now: float) -> float | None:
        vt = self.visibility_timeout
        return None if vt is None else now + vt

    def _open_holder(self) -> Holder:
        if not self._finalizer.alive:
            raise TransportError("memory consumer: used after close()")
        return self.holder

    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        end = None if timeout is None else time.monotonic() + timeout
        taken: list[tuple[str, int, Message]] = []
        with self.broker.cond:
            holder = self._open_holder()
            while True:
                now = time.monotonic()
                holder.deadline = self._deadline(now)  # this consumer is alive: renew its hold
                next_event = self.broker.housekeep(now)
                room = min(max_messages, self.prefetch - len(holder.held))
                if room <= 0:
                    break
                taken = self._take(holder, room)
                left = None if end is None else end - now
                if taken or (left is not None and left <= 0):
                    break
                if next_event is not None:
                    left = next_event if left is None else min(left, next_event)
                self.broker.cond.wait(left)
        # Decoding happens outside the lock: other threads keep publishing and fetching meanwhile.
        return [_delivery(name, tag, message) for name, tag, message in taken]

    def _take(self, holder: Holder, room: int) -> list[tuple[str, int, Message]]:
        """Pop up to ``room`` messages, starting with a different queue each time (no starving)."""
        out: list[tuple[str, int, Message]] = []
        names = self.queues[self._turn :] + self.queues[: self._turn]
        self._turn = (self._turn + 1) % len(self.queues)
        for name in names:
            heap = self.broker.queues.get(name)
            while heap and len(out) < room:
                _, message = heapq.heappop(heap)
                tag = next(self.broker.tags)
                holder.held[tag] = (name, message)
                out.append((name, tag, message))
        return out

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        with self.broker.lock:
            held = self.holder.held
            for delivery in deliveries:
                held.pop(delivery.tag, None)

    def reject(self, delivery: Delivery, reason: str) -> None:
        dead = dead_letter_queue(delivery.queue)
        copy = dead_letter_message(delivery, reason)
        envelope = _pack(dead, copy)
        with self.broker.lock:
            if self.holder.held.pop(delivery.tag, None) is None:
                return  # settled already, or given back: it will be delivered again
            self.broker.queues.setdefault(dead, [])
            self.broker.put(dead, self.broker.message(envelope, _priority(copy), time.monotonic()))

    def requeue(self, delivery: Delivery) -> None:
        with self.broker.lock:
            item = self.holder.held.pop(delivery.tag, None)
            if item is not None:
                self.broker.give_back(*item)
                self.broker.cond.notify_all()

    def close(self) -> None:
        if self._finalizer.detach() is None:
            return  # closed already
        with self.broker.lock:
            self.broker.holders.pop(self.owner, None)
            self.broker.release(self.holder)


def _delivery(queue: str, tag: int, message: Message) -> Delivery:
    try:
        wire, redelivered = json_envelope.unpack_consumed(message.envelope)
    except ProtocolError as exc:
        return Delivery(queue, None, tag, message.redelivered, raw=message.envelope, error=exc)
    redelivered = message.redelivered or redelivered
    return Delivery(queue, wire, tag, redelivered, deliveries=message.deliveries + 1)


class MemorySubscription(Subscription):
    """A broadcast inbox; the broker holds it weakly, so a dropped subscription stops receiving."""

    def __init__(self, broker: Broker, exchange: str) -> None:
        self.broker = broker
        self.exchange = exchange
        self.inbox: queue_module.SimpleQueue[bytes] = queue_module.SimpleQueue()
        broker.subscribe(exchange, self)

    def deliver(self, envelope: bytes) -> None:
        self.inbox.put(envelope)

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            try:
                envelope = self.inbox.get(timeout=left) if left != 0 else self.inbox.get_nowait()
            except queue_module.Empty:
                return None
            try:
                return json_envelope.unpack_wire(envelope)[0]
            except ProtocolError:
                continue  # broadcasts are control messages: an unreadable one is skipped

    def close(self) -> None:
        self.broker.unsubscribe(self.exchange, self)
