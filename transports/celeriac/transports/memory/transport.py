"""The memory transport and its consumer."""

from __future__ import annotations

import heapq
import itertools
import queue as queue_module
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, Delivery, QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..dead_letter import dead_letter_message
from .broker import Broker, Held, broker_for

__all__ = ["MemoryTransport"]

_owners = itertools.count(1)


def _priority(wire: WireMessage) -> int:
    value = wire.properties.get("priority")
    return min(max(value, 0), 255) if isinstance(value, int) else 0


class MemoryTransport(Transport):
    """``memory://name``: every transport with the same URL in this process shares queues."""

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
        #: Seconds a consumer that stops calling fetch keeps its deliveries (None: for ever).
        self.visibility_timeout = None if vt is None else float(vt)

    def connect(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to close: the queues live as long as the process."""

    def declare_queue(self, spec: QueueSpec) -> None:
        self.broker.declare(spec.name)
        self.broker.declare(spec.dead_letter_queue)

    def _pack(self, queue: str, wire: WireMessage) -> bytes:
        return json_envelope.pack_wire(wire, routing_key=queue, delivery_tag=str(uuid.uuid4()))

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        entry = self.broker.entry(self._pack(queue, message), _priority(message))
        self.broker.put(queue, entry, delay)

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        return MemoryConsumer(self, queues, prefetch)

    def purge(self, queue: str) -> int:
        with self.broker.cond:
            count = len(self.broker.queues.get(queue, []))
            self.broker.queues[queue] = []
            return count

    def queue_length(self, queue: str) -> int:
        with self.broker.cond:
            self.broker.housekeep(time.monotonic())
            return len(self.broker.queues.get(queue, []))

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        with self.broker.cond:
            for inbox in self.broker.subscribers.get(exchange, []):
                inbox.put(message)  # type: ignore[attr-defined]

    def subscribe(self, exchange: str) -> Subscription:
        return MemorySubscription(self.broker, exchange)


class MemoryConsumer(Consumer):
    """Deliveries from heaps; settled ones are forgotten, unsettled ones can come back."""

    def __init__(self, transport: MemoryTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.transport = transport
        self.broker = transport.broker
        self.owner = next(_owners)
        self.unsettled: set[str] = set()
        self._turn = 0

    def _deadline(self, now: float) -> float | None:
        vt = self.transport.visibility_timeout
        return None if vt is None else now + vt

    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        room = min(max_messages, self.prefetch - len(self.unsettled))
        end = None if timeout is None else time.monotonic() + timeout
        with self.broker.cond:
            while True:
                now = time.monotonic()
                for tag in self.unsettled:  # renew the hold: this consumer is alive
                    held = self.broker.held.get(tag)
                    if held is not None:
                        held.deadline = self._deadline(now)
                next_due = self.broker.housekeep(now)
                if room <= 0:
                    return []
                got = self._take(room, now)
                if got:
                    return got
                left = None if end is None else end - now
                if left is not None and left <= 0:
                    return []
                wait = left if next_due is None else min(next_due, left or next_due)
                self.broker.cond.wait(wait)

    def _take(self, room: int, now: float) -> list[Delivery]:
        """Pop up to ``room`` entries, taking queues in turn so none starves the others."""
        out: list[Delivery] = []
        names = self.queues[self._turn :] + self.queues[: self._turn]
        self._turn = (self._turn + 1) % len(self.queues)
        for name in names:
            heap = self.broker.queues.get(name, [])
            while heap and len(out) < room:
                entry = heapq.heappop(heap)
                tag = str(uuid.uuid4())
                self.broker.held[tag] = Held(name, entry, self.owner, self._deadline(now))
                self.unsettled.add(tag)
                out.append(_delivery(name, tag, entry.envelope, entry.redelivered))
        return out

    def _settle(self, tag: str) -> Held | None:
        self.unsettled.discard(tag)
        return self.broker.held.pop(tag, None)

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        with self.broker.cond:
            for d in deliveries:
                self._settle(d.tag)

    def reject(self, delivery: Delivery, reason: str) -> None:
        with self.broker.cond:
            if self._settle(delivery.tag) is None:
                return  # already settled or given back: it will be delivered again
            spec = QueueSpec(delivery.queue)
            dead = self.transport._pack(
                spec.dead_letter_queue, dead_letter_message(delivery, reason)
            )
            self.broker.queues.setdefault(spec.dead_letter_queue, [])
            self.broker.put(spec.dead_letter_queue, self.broker.entry(dead, 0))

    def requeue(self, delivery: Delivery) -> None:
        with self.broker.cond:
            held = self._settle(delivery.tag)
            if held is not None:
                held.entry.redelivered = True
                heapq.heappush(self.broker.queues[held.queue], held.entry)
                self.broker.cond.notify_all()

    def close(self) -> None:
        with self.broker.cond:
            for tag in list(self.unsettled):
                held = self._settle(tag)
                if held is not None:
                    held.entry.redelivered = True
                    heapq.heappush(self.broker.queues[held.queue], held.entry)
            self.broker.cond.notify_all()


def _delivery(queue: str, tag: str, envelope: bytes, redelivered: bool) -> Delivery:
    try:
        wire, info = json_envelope.unpack_wire(envelope)
    except ProtocolError as exc:
        return Delivery(queue, None, tag, redelivered, raw=envelope, error=exc)
    return Delivery(queue, wire, tag, redelivered or info.redelivered)


class MemorySubscription(Subscription):
    """A broadcast inbox."""

    def __init__(self, broker: Broker, exchange: str) -> None:
        self.broker = broker
        self.exchange = exchange
        self.inbox: queue_module.SimpleQueue[WireMessage] = queue_module.SimpleQueue()
        with broker.cond:
            broker.subscribers.setdefault(exchange, []).append(self.inbox)

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        try:
            if timeout == 0:
                return self.inbox.get_nowait()
            return self.inbox.get(timeout=timeout)
        except queue_module.Empty:
            return None

    def close(self) -> None:
        with self.broker.cond:
            inboxes = self.broker.subscribers.get(self.exchange, [])
            if self.inbox in inboxes:
                inboxes.remove(self.inbox)
