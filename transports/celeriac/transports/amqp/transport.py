"""The RabbitMQ transport (SPEC.md §6.2): Celery's declarations, confirms, TTL delay queues."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel

from celeriac.protocol import WireMessage
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.wire import BROKER_DELAYED_HEADER

from ..base import Consumer, QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..errors import BrokerUnavailable, TransportError
from ..failover import Failover, split_urls
from ..registry import redact_url
from .connection import (
    CONNECTION_ERRORS,
    coalesce_writes,
    connect,
    option_query,
    unwritten,
    with_retries,
    write,
)
from .frames import publish_frames
from .native_delay import ENTRY_EXCHANGE, MAX_DELAY_S, bind_queue, declare_topology
from .native_delay import routing_key as native_routing_key
from .options import CLIENT_WINDOW, WINDOW_BYTES, parse_options

__all__ = ["AmqpTransport", "delay_queue"]


#: Windowed publishes closer together than this are a burst, whose writes the kernel may
#: coalesce (``coalesce_writes``): a loop of ``delay()`` calls ~50 us apart is one; a caller
#: that waits for each result (~1 ms) is not, and its messages are never held.
_BURST_GAP_S = 0.0002
#: pika's state of an open channel (the windowed publish checks it as basic_publish does).
_CHANNEL_OPEN = pika.channel.Channel.OPEN
#: RabbitMQ refuses an ``x-expires`` (a delay queue's is its TTL + 60 s) past this many ms.
_MAX_EXPIRES_MS = 2**32 - 1
#: A longer delay is held this long (about 46 days) at a time: a round bucket under the limit.
MAX_HOP_S = 4_000_000


def delay_bucket(seconds: float) -> int:
    """Milliseconds a delay is rounded up to: never early, and late by at most a tenth of a
    second below 100 s, a second below 1,000 s, a thousandth of the delay beyond."""
    ms = max(math.ceil(seconds * 1000), 1)
    step = 100 if seconds < 100 else 1000 if seconds < 1000 else max(int(ms / 1000), 1000)
    return math.ceil(ms / step) * step


def delay_queue(queue: str, bucket_ms: int) -> str:
    """The TTL queue that holds ``queue``'s messages for ``bucket_ms`` (SPEC.md §6.2)."""
    return f"celeriac.delay.{bucket_ms}.{queue}"


def properties(wire: WireMessage) -> pika.BasicProperties:
    """pika properties for a wire message (basic properties plus the header table)."""
    return pika.BasicProperties(**amqp_envelope.pack_wire(wire).properties)


class _Confirms:
    """Publisher confirms of one channel, counted here (pika's blocking channel waits for
    each publish's confirm before the next; this lets a whole batch go out first). A windowed
    publish leaves its message here until confirmed, to be sent again if the connection breaks.

    ``wake`` is called after each confirm, return and the channel's readiness, so that a wait
    for them (:meth:`AmqpTransport._pump_until`) looks again at once."""

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self.wake = wake
        self.ready = False
        self.next_tag = 1
        #: Delivery tag -> the (queue, message) of a windowed publish, None for a batch's.
        self.pending: dict[int, tuple[str, WireMessage] | None] = {}
        self.nacked: set[int] = set()
        #: Windowed messages the broker refused, not yet reported.
        self.refused = 0
        #: Windowed messages the broker returned (no queue bound to the key), not yet reported.
        self.returned = 0
        #: Bytes of the windowed bodies still waiting for their confirms.
        self.bytes = 0

    def on_ready(self, _frame: Any) -> None:
        self.ready = True
        self.wake()

    def sent(self, item: tuple[str, WireMessage] | None = None) -> None:
        self.pending[self.next_tag] = item
        self.next_tag += 1
        if item is not None:
            self.bytes += len(item[1].body)

    def on_return(self, *_returned: Any) -> None:
        # A mandatory message no queue took: RabbitMQ returns it, then confirms it.
        self.returned += 1
        self.wake()

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        if multiple:  # tags were handed out in order, and the dict keeps that order
            settled = []
            for t in self.pending:
                if t > tag:
                    break
                settled.append(t)
        else:
            settled = [tag]
        nack = isinstance(method, pika.spec.Basic.Nack)
        for t in settled:
            item = self.pending.pop(t, None)
            if item is not None:
                self.bytes -= len(item[1].body)
            if nack:
                self.nacked.add(t)
                self.refused += item is not None
        self.wake()

    def windowed(self) -> list[tuple[str, WireMessage]]:
        return [item for item in self.pending.values() if item is not None]


def _waker(conn: pika.BlockingConnection) -> Callable[[], None]:
    """What makes ``conn.process_data_events(time_limit=...)`` return once the callback that
    calls it has run. Confirms are read through the channel's own callbacks, which pika's
    blocking layer does not see: without this, each wait for them lasted its whole time limit
    (50 ms), ``app.flush()`` included. A negative channel number asks pika for a return only."""
    request = conn._request_channel_dispatch
    return lambda: request(-1)


#: Exchanges Celery declares as topic exchanges (its events); every other broadcast is a fanout.
TOPIC_EXCHANGES = frozenset(("celeryev",))


class AmqpTransport(Transport):
    """``amqp://user:password@host:5672/vhost`` (``//`` is the vhost ``/``); ``amqps://`` TLS.

    Several nodes (a cluster) as Celery writes them: ``amqp://h1//;amqp://h2//``; a broken
    connection reopens on the next node that answers. Options: see :class:`AmqpOptions`
    (``queue_type``, ``heartbeat``, ``connect_timeout``, ``failover_strategy``,
    ``publish_window``, ...); an unknown option is refused.
    """

    schemes = ("amqp", "amqps")
    capabilities = Capabilities(
        priorities=True,
        priority_order="higher-first",
        delayed_delivery=True,
        fanout=True,
        per_message_ack=True,
        redelivery="connection",
        ordering="fifo",
        shared=True,
        max_message_bytes=128 * 1024 * 1024,
    )
    client_publish_window = CLIENT_WINDOW

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.conn: pika.BlockingConnection | None = None
        self.generation = 0
        self._declared: set[str] = set()
        self.urls = split_urls(url)
        self.opts = parse_options(options, option_query(self.urls[0]))
        # Quorum queues count deliveries (x-delivery-count); classic ones only flag them.
        self.counts_redeliveries = self.quorum
        self.window = self.opts.publish_window
        self.failover = Failover(self.urls, self.opts.failover_strategy)
        #: Queues declared through this transport, to declare again after a broker cancel.
        self.specs: dict[str, QueueSpec] = {}
        #: Windowed messages a broken connection left unconfirmed: published again first.
        self._lost: list[tuple[str, WireMessage]] = []
        #: A consumer or a subscription reads on this connection: its writes (acks) go at once.
        self._serving = False
        #: Whether the kernel may hold this connection's writes now (TCP_NODELAY off): only
        #: within a burst of windowed publishes (``coalesce_writes``).
        self._holding = False
        #: When the last windowed publish was written (``time.monotonic()``).
        self._last_write = 0.0

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        if self.conn is None or not self.conn.is_open:
            self._open()

    def _open(self) -> None:
        old: _Confirms | None = getattr(self, "batch", None)
        if old is not None:  # what the lost connection left unconfirmed goes again
            self._lost += old.windowed()
            old.pending.clear()
        self.conn = self._connect_any()
        self._holding = False  # a new socket: pika turned Nagle off
        self.generation += 1
        self._declared.clear()
        self.confirm_ch = self.conn.channel()
        self.confirm_ch.confirm_delivery()
        self.batch_ch = self.conn.channel()
        self.batch = _Confirms(wake=_waker(self.conn))
        self.batch_ch._impl.confirm_delivery(
            ack_nack_callback=self.batch.on_confirm, callback=self.batch.on_ready
        )
        self.batch_ch._impl.add_on_return_callback(self.batch.on_return)
        self._pump_until(lambda: self.batch.ready, "turn publisher confirms on")

    @property
    def _may_coalesce(self) -> bool:
        """Whether this connection may let the kernel coalesce its writes (``coalesce_writes``):
        with a publish window, while nothing consumes on it."""
        return self.window > 0 and self.opts.coalesce_writes and not self._serving

    def _hold(self, on: bool) -> None:
        """Let the kernel hold small writes (Nagle) or not; turning it off sends what it held."""
        if on != self._holding and self.conn is not None and self.conn.is_open:
            coalesce_writes(self.conn, on)
            self._holding = on

    @contextlib.contextmanager
    def _at_once(self) -> Iterator[None]:
        """While an operation waits for the broker, nothing is held back: what the kernel holds
        goes now, and the operation's own writes go at once. (A request held until RabbitMQ
        acknowledged earlier bytes could wait for a delayed acknowledgement, 40 ms on Linux.)
        The next burst of publishes turns holding on again."""
        self._hold(False)
        yield

    def _connect_any(self) -> pika.BlockingConnection:
        """A connection to the first node of the failover order that answers."""
        errors = []
        for url in self.failover.round():
            try:
                conn = connect(url, self.opts)
            except BrokerUnavailable as exc:
                errors.append(exc)
                continue
            self.failover.connected(url)
            return conn
        if len(errors) == 1:
            raise errors[0]
        raise BrokerUnavailable(
            f"none of the {len(errors)} RabbitMQ nodes answered: "
            + "; ".join(str(e) for e in errors)
        ) from errors[-1]

    @property
    def node(self) -> str:
        """The URL of the node connected to (password hidden)."""
        return redact_url(self.failover.current)

    def reconnect(self) -> None:
        """Drop the old connection (it is gone anyway) and open a new one."""
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already closed by the broker going away
                pass
            self.conn = None
        self._open()

    def connection(self) -> pika.BlockingConnection:
        self.connect()
        assert self.conn is not None
        return self.conn

    def close(self) -> None:
        if self.conn is not None and (self.batch.pending or self._lost):
            self.flush()
        if self.conn is not None and self.conn.is_open:
            try:
                self.conn.close()
            except Exception:  # closing a connection the broker already dropped
                pass
        self.conn = None

    def _retry(self, operation: Any) -> Any:
        """Run ``operation`` on the connection, again after a reconnect when the connection
        broke. A channel the broker closed (it refused an argument) is opened again, and the
        refusal is a TransportError: nothing of pika's reaches the caller."""
        self.connect()
        try:
            with self._at_once():
                return with_retries(operation, self.reconnect, self.opts.retry_seconds)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._reopen_confirm_channel()
            raise TransportError(
                f"RabbitMQ at {self.node} refused: {exc.reply_code} {exc.reply_text}"
            ) from exc
        except pika.exceptions.UnroutableError as exc:
            raise TransportError(
                f"RabbitMQ at {self.node} returned the message: no queue is bound to its "
                "routing key (declare the queue first)"
            ) from exc
        except pika.exceptions.NackError as exc:
            raise TransportError(f"RabbitMQ at {self.node} refused the message (nack)") from exc

    def _reopen_confirm_channel(self) -> None:
        # Only the channel is gone: the consumers' channels on this connection, and what they
        # hold, stay as they are.
        if self.conn is None or not self.conn.is_open:
            return
        self.confirm_ch = self.conn.channel()
        self.confirm_ch.confirm_delivery()
        self._declared = {q for q in self._declared if not q.startswith("celeriac.delay.")}

    # -- declarations --------------------------------------------------------------------------
    @property
    def quorum(self) -> bool:
        """Whether task, delay and dead-letter queues are quorum queues."""
        return self.opts.queue_type == "quorum"

    def queue_arguments(self, spec: QueueSpec) -> dict[str, Any]:
        """The ``x-`` arguments of a task queue, as Celery 5.5 declares them."""
        arguments: dict[str, Any] = {}
        if spec.max_priority is not None:
            if self.quorum:
                raise TransportError(
                    f"queue {spec.name!r}: quorum queues have no priorities (x-max-priority); "
                    "declare it without max_priority or use queue_type='classic'"
                )
            arguments["x-max-priority"] = spec.max_priority
        if self.quorum:
            arguments["x-queue-type"] = "quorum"
            if self.opts.delivery_limit is not None:
                arguments["x-delivery-limit"] = self.opts.delivery_limit
        return arguments

    def declare_dead_letter(self, ch: BlockingChannel, name: str) -> None:
        """Declare a dead-letter queue, of the transport's queue type."""
        arguments = {"x-queue-type": "quorum"} if self.quorum else None
        ch.queue_declare(name, durable=True, arguments=arguments)

    def declare_queue(self, spec: QueueSpec) -> None:
        arguments = self.queue_arguments(spec)
        if self.quorum and not spec.durable:
            raise TransportError(f"queue {spec.name!r}: quorum queues are always durable")

        def declare() -> None:
            ch = self.connection().channel()
            try:
                ch.exchange_declare(spec.name, self.opts.exchange_type, durable=True)
                ch.queue_declare(spec.name, durable=spec.durable, arguments=arguments or None)
                ch.queue_bind(spec.name, spec.name, routing_key=spec.name)
                self.declare_dead_letter(ch, spec.dead_letter_queue)
                if self.opts.native_delay:
                    self._native_topology(ch)
                    bind_queue(ch, spec.name, spec.name)
                ch.close()
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise TransportError(
                    f"RabbitMQ refused to declare queue {spec.name!r}: {exc.reply_text}. It exists "
                    "with other arguments (priority, type); delete it or declare it the same way"
                ) from exc

        self._retry(declare)
        self._declared.add(spec.name)
        self.specs[spec.name] = spec

    def declare_reply_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """Declared as Kombu's mailbox declares its reply exchange and queue (transient, the
        queue gone 10 s after its last consumer), bound with ``routing_key``."""

        def declare() -> None:
            ch = self.connection().channel()
            ch.exchange_declare(exchange, "direct", durable=False)
            ch.queue_declare(
                queue,
                durable=False,
                auto_delete=True,
                arguments={"x-expires": 10_000, "x-message-ttl": 300_000},
            )
            ch.queue_bind(queue, exchange, routing_key=routing_key)
            ch.close()

        self._retry(declare)
        self._declared.add(queue)

    def _native_topology(self, ch: BlockingChannel) -> None:
        """Declare Celery's delayed-delivery levels once per connection."""
        if "celery_delayed_delivery" not in self._declared:
            declare_topology(ch, self.opts.queue_type)
            self._declared.add("celery_delayed_delivery")

    def _native_delayed(self, queue: str, delay: float) -> bool:
        """Whether this delay goes through Celery's topology (else a TTL queue)."""
        return self.opts.native_delay and delay <= MAX_DELAY_S

    def _delay_target(self, queue: str, delay: float) -> str:
        bucket = delay_bucket(delay)
        name = delay_queue(queue, bucket)
        if name not in self._declared:
            arguments: dict[str, Any] = {
                "x-message-ttl": bucket,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
                "x-expires": bucket + 60_000,
            }
            if self.quorum:
                # Dead-lettered at least once (a leader lost mid-move does not drop the
                # message), which RabbitMQ allows only with publishes refused when full.
                arguments |= {
                    "x-queue-type": "quorum",
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                }
            self.confirm_ch.queue_declare(name, durable=True, arguments=arguments)
            self._declared.add(name)
        return name

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        if self.window > 0 and not (delay and delay > 0):
            self._publish_windowed(queue, message)
            return

        def send() -> None:
            if delay and delay > 0 and self._native_delayed(queue, delay):
                self._native_topology(self.confirm_ch)
                # The queue must be bound to the delivery exchange, or the message is dropped
                # at the end of its delay: bind it (again; binding is idempotent) if unsure.
                if queue not in self.specs:
                    bind_queue(self.confirm_ch, queue, queue)
                    self.specs[queue] = QueueSpec(queue)
                key = native_routing_key(delay, queue)
                self.confirm_ch.basic_publish(
                    ENTRY_EXCHANGE, key, message.body, properties(message), mandatory=True
                )
                return
            wire, hold = message, delay
            if hold and delay_bucket(hold) + 60_000 > _MAX_EXPIRES_MS:
                # Longer than a delay queue holds: held as long as one can, then delivered
                # without the broker-delayed mark, so the worker reads the task's eta and parks
                # it again (SPEC.md §6.2).
                headers = {k: v for k, v in message.headers.items() if k != BROKER_DELAYED_HEADER}
                wire = dataclasses.replace(message, headers=headers)
                hold = MAX_HOP_S
            target = self._delay_target(queue, hold) if hold and hold > 0 else queue
            self.confirm_ch.basic_publish("", target, wire.body, properties(wire), mandatory=True)

        self._retry(send)

    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        """All of them written at once, then one wait until the broker confirmed every one
        (pipelined confirms: one disk sync for the batch, where a transaction measured 1.5x
        slower); returns only once RabbitMQ has them all."""

        def send() -> None:
            impl, batch = self.batch_ch._impl, self.batch
            batch.nacked.clear()
            for m in messages:
                impl.basic_publish("", queue, m.body, properties(m))
                batch.sent()
            self._pump_until(lambda: not batch.pending or bool(batch.nacked), "confirm a batch")
            if batch.nacked:
                refused = len(batch.nacked)
                batch.nacked.clear()
                raise TransportError(
                    f"RabbitMQ refused {refused} of {len(messages)} messages to {queue!r} (nack)"
                )

        self._retry(send)

    def _publish_windowed(self, queue: str, message: WireMessage) -> None:
        """Written and flushed to the socket, its confirm read later (``publish_window``).

        The common case (the connection open, nothing to send again first, the window not
        full) writes frames built here (``frames.py``) and returns; pika's channel sees no
        call, and the delivery tag is counted in ``self.batch`` as for pika's publish.
        Everything else goes the general way, :meth:`_publish_windowed_slow`."""
        item = (queue, message)
        batch: _Confirms | None = getattr(self, "batch", None)
        conn = self.conn
        if batch is None or conn is None or self._lost:
            self._publish_windowed_slow(item, written=False)
            return
        ch = self.batch_ch._impl
        impl = ch.connection
        data = None
        if ch._state == _CHANNEL_OPEN and impl.is_open:
            data = publish_frames(
                ch.channel_number, "", queue, True, message, impl._body_max_length
            )
        if data is None:
            self._publish_windowed_slow(item, written=False)
            return
        batch.sent(item)  # from here on, a broken connection sends it again with the rest
        now = time.monotonic()
        # Within a burst the kernel may hold this write until RabbitMQ acknowledged the last
        # ones, and send them together; after a pause it goes at once, as a lone call should.
        burst = now - self._last_write < _BURST_GAP_S and self._may_coalesce
        self._last_write = now
        if burst != self._holding:
            self._hold(burst)
        try:
            write(impl, data, 3 if message.body else 2)
        except CONNECTION_ERRORS:
            pass  # the general way reconnects, and sends it again with the rest
        else:
            if not (
                unwritten(impl)
                or len(batch.pending) > self.window
                or batch.bytes > WINDOW_BYTES
                or batch.refused
                or batch.returned
            ):
                return
        self._publish_windowed_slow(item, written=True)

    def _publish_windowed_slow(self, item: tuple[str, WireMessage], written: bool) -> None:
        """Publish ``item`` through pika unless ``written``; write what pika holds, wait for
        confirms while the window is full, report refusals, reconnect and send again when
        the connection broke."""
        queue, message = item

        def send() -> None:
            nonlocal written
            self._send_lost()
            batch = self.batch
            if not written:
                # Mandatory, as an unwindowed publish: a message no queue takes is reported.
                self.batch_ch._impl.basic_publish(
                    "", queue, message.body, properties(message), mandatory=True
                )
                batch.sent(item)
                written = True  # from here on, a broken connection sends it again with the rest
            self.batch_ch._flush_output()
            if len(batch.pending) > self.window or batch.bytes > WINDOW_BYTES:
                half, half_bytes = self.window // 2, WINDOW_BYTES // 2
                self._pump_until(
                    lambda: len(batch.pending) <= half and batch.bytes <= half_bytes,
                    "confirm publishes",
                )
            self._report_refused()

        self._retry(send)

    def _send_lost(self) -> None:
        lost, self._lost = self._lost, []
        for item in lost:
            self.batch_ch._impl.basic_publish(
                "", item[0], item[1].body, properties(item[1]), mandatory=True
            )
            self.batch.sent(item)

    def _report_refused(self) -> None:
        batch = self.batch
        if batch.refused:
            refused, batch.refused = batch.refused, 0
            raise TransportError(f"RabbitMQ refused {refused} earlier published message(s) (nack)")
        if batch.returned:
            returned, batch.returned = batch.returned, 0
            raise TransportError(
                f"RabbitMQ at {self.node} returned {returned} earlier published message(s): no "
                "queue is bound to its routing key (declare the queue first)"
            )

    def set_publish_window(self, window: int) -> int:
        previous, self.window = self.window, window
        if (previous > 0) != (window > 0):
            self._hold(False)
        return previous

    def flush(self) -> None:
        def wait() -> None:
            self._send_lost()
            self._pump_until(lambda: not self.batch.pending, "confirm publishes")
            self._report_refused()

        if self.conn is not None and (self.batch.pending or self._lost):
            self._retry(wait)

    def _pump_until(self, done: Any, what: str, timeout: float = 30.0) -> None:
        assert self.conn is not None
        deadline = time.monotonic() + timeout
        with self._at_once():  # what the kernel holds back goes before its confirm is awaited
            while not done():
                if not self.batch_ch.is_open:
                    raise pika.exceptions.ChannelWrongStateError(
                        f"channel closed: could not {what}"
                    )
                if time.monotonic() > deadline:
                    raise TransportError(f"RabbitMQ did not {what} within {timeout:.0f} s")
                self.conn.process_data_events(time_limit=0.05)

    # -- queues --------------------------------------------------------------------------------
    def purge(self, queue: str) -> int:
        def purge() -> int:
            ok = self.confirm_ch.queue_purge(queue)
            return int(ok.method.message_count)

        result: int = self._retry(purge)
        return result

    def queue_length(self, queue: str) -> int:
        def length() -> int:
            ok = self.confirm_ch.queue_declare(queue, passive=True)
            return int(ok.method.message_count)

        result: int = self._retry(length)
        return result

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        from .consumer import AmqpConsumer

        self._serving = True
        self._hold(False)
        return AmqpConsumer(self, queues, prefetch)

    # -- broadcast -----------------------------------------------------------------------------
    def fanout_exchange(
        self, ch: BlockingChannel | pika.channel.Channel, exchange: str, **callback: Any
    ) -> None:
        """Declare ``exchange`` as Celery declares it: Kombu's mailbox exchanges are transient
        fanouts; Celery's event exchange ``celeryev`` is a durable topic exchange, which reaches
        every queue bound with ``#`` just as a fanout does. (``callback=``: on pika's
        asynchronous channel, called with the broker's reply.)"""
        if exchange in TOPIC_EXCHANGES:
            ch.exchange_declare(exchange, "topic", durable=True, auto_delete=False, **callback)
        else:
            ch.exchange_declare(exchange, "fanout", durable=False, auto_delete=False, **callback)

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        def send() -> None:
            if exchange not in self._declared:
                self.fanout_exchange(self.confirm_ch, exchange)
                self._declared.add(exchange)
            # Celery routes events by type ("task.succeeded"); receivers bind "#".
            key = (
                str(message.headers.get("routing_key") or "") if exchange in TOPIC_EXCHANGES else ""
            )
            self.confirm_ch.basic_publish(exchange, key, message.body, properties(message))

        self._retry(send)

    def subscribe(self, exchange: str) -> Subscription:
        from .subscription import AmqpSubscription

        self._serving = True
        self._hold(False)
        return AmqpSubscription(self, exchange)
