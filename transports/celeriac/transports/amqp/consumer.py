"""The RabbitMQ consumer (pika, one thread)."""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pika

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import amqp as amqp_envelope

from ..base import Consumer, Delivery, QueueSpec
from ..dead_letter import dead_letter_message
from ..errors import TransportError
from .connection import with_retries

if TYPE_CHECKING:
    from .transport import AmqpTransport

__all__ = ["AmqpConsumer"]

log = logging.getLogger("celeriac.transports.amqp")
#: Channels of every consumer are numbered from one counter, so a delivery tag names its channel.
_EPOCHS = itertools.count(1)
#: Seconds between attempts to consume again from a queue the broker cancelled us on.
_RECONSUME_PAUSE = 0.5
#: pika reads the socket 4 KiB at a time and appends each read to its frame buffer, so a
#: 128 KiB frame is copied ~32 times over while it arrives. Once bodies this large come in, the
#: connection reads this much at a time (back to pika's 4 KiB with small ones: each frame
#: decoded also copies the rest of the buffer, which costs small frames in large reads).
_LARGE_BODY = 64 << 10
_LARGE_READ = 256 << 10

# Headers RabbitMQ adds when a message passes a dead-letter exchange (our delay queues);
# they are the broker's bookkeeping, not the producer's headers.
_BROKER_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)


def _props_dict(props: pika.BasicProperties) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (
        "content_type",
        "content_encoding",
        "correlation_id",
        "reply_to",
        "priority",
        "delivery_mode",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "app_id",
    ):
        value = getattr(props, name, None)
        if value is not None:
            out[name] = value
    headers = dict(props.headers or {})
    for name in _BROKER_HEADERS:
        headers.pop(name, None)
    out["headers"] = headers
    return out


_PLAIN = (str, int, float, bool, type(None))


def _decode_bytes(value: Any) -> Any:
    """pika hands header strings back as str but long strings as bytes; make them text."""
    if type(value) is dict:
        # The common case first: a header table of plain values is kept as it is.
        if all(type(v) in _PLAIN for v in value.values()):
            return value
        return {k: v if type(v) in _PLAIN else _decode_bytes(v) for k, v in value.items()}
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, dict):
        return {k: _decode_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_bytes(v) for v in value]
    return value


class AmqpConsumer(Consumer):
    """basic.consume with basic.qos; deliveries buffered, settled by delivery tag.

    A ``basic.cancel`` from the broker (the queue was deleted, or its node went down) is
    noticed: the queue is declared again and consumed again, retried until it works.
    """

    def __init__(self, transport: AmqpTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.t = transport
        self.buffer: collections.deque[Delivery] = collections.deque()
        self.unsettled: dict[tuple[int, int], Delivery] = {}
        self.generation = -1
        #: Which channel deliveries came on: tags of an older channel cannot be settled.
        self.epoch = -1
        #: Queue by consumer tag, and the queues the broker cancelled us on.
        self.consumers: dict[str, str] = {}
        self.cancelled: set[str] = set()
        self._next_reconsume = 0.0
        self._setup()

    def _setup(self) -> None:
        self.t.connect()
        self.generation = self.t.generation
        self.epoch = next(_EPOCHS)
        self.buffer.clear()
        self.unsettled.clear()  # the broker gives back what the old channel held
        self.consumers.clear()
        self.cancelled.clear()
        self.ch = self.t.connection().channel()
        self.ch.add_on_cancel_callback(self._on_cancel)
        self.ch.basic_qos(prefetch_count=self.prefetch)
        self._large_reads = False  # a new connection reads as pika does
        for queue in self.queues:
            self.consumers[self.ch.basic_consume(queue, self._on_message)] = queue

    def _on_cancel(self, frame: Any) -> None:
        queue = self.consumers.pop(frame.method.consumer_tag, None)
        if queue is not None:
            log.warning("RabbitMQ cancelled the consumer of %r on %s", queue, self.t.node)
            self.cancelled.add(queue)

    def _reconsume(self) -> None:
        """Consume again from queues the broker cancelled us on (declared again first: a
        deleted queue comes back; a queue whose node is down refuses until it is back)."""
        now = time.monotonic()
        if now < self._next_reconsume:
            return
        self._next_reconsume = now + _RECONSUME_PAUSE
        for queue in sorted(self.cancelled):
            try:
                self.t.declare_queue(self.t.specs.get(queue) or QueueSpec(queue))
            except TransportError as exc:
                log.warning("consuming %r again failed, will retry: %s", queue, exc)
                continue
            self.consumers[self.ch.basic_consume(queue, self._on_message)] = queue
            self.cancelled.discard(queue)
            log.warning("consuming %r again on %s", queue, self.t.node)

    def _read_size(self, large: bool) -> None:
        self._large_reads = large
        io = getattr(getattr(self.t.connection(), "_impl", None), "_transport", None)
        if io is None:  # pika's internals moved: keep its reads as they are
            return
        if large:
            io._MAX_RECV_BYTES = _LARGE_READ
        else:
            vars(io).pop("_MAX_RECV_BYTES", None)

    def _on_message(self, ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        queue = method.routing_key or ""
        tag = (self.epoch, method.delivery_tag)
        if (len(body) >= _LARGE_BODY) is not self._large_reads:
            self._read_size(not self._large_reads)
        try:
            wire = amqp_envelope.unpack_wire(body, _decode_bytes(_props_dict(props)))
            delivery = Delivery(queue, wire, tag, bool(method.redelivered), raw=body)
        except ProtocolError as exc:
            delivery = Delivery(queue, None, tag, bool(method.redelivered), raw=body, error=exc)
        # A message published to a queue through the default exchange names it as routing key;
        # through a bound exchange, the consumer's own queue is the one to name.
        if delivery.queue not in self.queues:
            delivery.queue = self.queues[0] if len(self.queues) == 1 else delivery.queue
        self.buffer.append(delivery)

    def _ensure(self) -> None:
        if self.generation != self.t.generation or not self.ch.is_open:
            self._setup()
        elif self.cancelled:
            self._reconsume()

    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        end = None if timeout is None else time.monotonic() + timeout

        def pump() -> None:
            self._ensure()
            left = 0.0 if end is None else max(end - time.monotonic(), 0.0)
            self.t.connection().process_data_events(time_limit=min(left, 0.05) if end else 0.05)

        while True:
            room = min(max_messages, self.prefetch - len(self.unsettled))
            if room <= 0:
                with_retries(lambda: self.t.connection().process_data_events(0), self._reconnect)
                return []
            if self.buffer:
                out = [self.buffer.popleft() for _ in range(min(room, len(self.buffer)))]
                for d in out:
                    self.unsettled[d.tag] = d
                return out
            if end is not None and time.monotonic() >= end:
                return []
            with_retries(pump, self._reconnect)

    def _reconnect(self) -> None:
        self.t.reconnect()
        self._setup()

    def _live(self, delivery: Delivery) -> bool:
        return delivery.tag in self.unsettled and delivery.tag[0] == self.epoch

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        """One write for the whole batch: the tags below every delivery still out are acked
        with one ``multiple`` ack, the rest one by one, and the frames flushed once (pika's
        ``basic_ack`` alone flushes, and so runs its I/O loop, for every tag)."""
        tags = []
        for d in deliveries:
            if self._live(d):
                tags.append(d.tag[1])
            self.unsettled.pop(d.tag, None)
        if not tags:
            return
        tags.sort()
        # Deliveries still buffered carry higher tags than any fetched one (one channel, in
        # order), so only the unsettled ones can sit below a tag acked here.
        lowest_out = min((t for e, t in self.unsettled if e == self.epoch), default=None)
        cut = len(tags) if lowest_out is None else bisect.bisect_left(tags, lowest_out)

        def send() -> None:
            impl = self.ch._impl  # the channel under pika's blocking wrapper: no flush per call
            if cut:
                impl.basic_ack(tags[cut - 1], multiple=True)
            for tag in tags[cut:]:
                impl.basic_ack(tag)
            self.ch._flush_output()

        self._settle(send)

    def _settle(self, action: Any) -> None:
        try:
            action()
        except Exception:  # the connection went away: the broker redelivers, nothing is lost
            pass

    def reject(self, delivery: Delivery, reason: str) -> None:
        if not self._live(delivery):
            self.unsettled.pop(delivery.tag, None)
            return
        dead = QueueSpec(delivery.queue).dead_letter_queue
        copy = dead_letter_message(delivery, reason)
        from .transport import properties

        def send() -> None:
            self.t.declare_dead_letter(self.t.confirm_ch, dead)
            self.t.confirm_ch.basic_publish("", dead, copy.body, properties(copy))

        # The dead letter is confirmed before the original goes; a reconnect meanwhile ends
        # this channel, and the broker gives the original back (at least once).
        self.t._retry(send)
        self._settle(lambda: self.ch.basic_ack(delivery.tag[1]))
        self.unsettled.pop(delivery.tag, None)

    def requeue(self, delivery: Delivery) -> None:
        if self._live(delivery):
            self._settle(lambda: self.ch.basic_nack(delivery.tag[1], requeue=True))
        self.unsettled.pop(delivery.tag, None)

    def close(self) -> None:
        try:
            if self.ch.is_open:
                for d in list(self.buffer) + list(self.unsettled.values()):
                    if d.tag[0] == self.epoch:
                        self.ch.basic_nack(d.tag[1], requeue=True)
                self.ch.close()
        except Exception:  # closing a channel on a connection that is gone
            pass
        self.buffer.clear()
        self.unsettled.clear()
