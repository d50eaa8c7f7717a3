"""The RabbitMQ broadcast subscription: an exclusive, auto-deleted queue bound to the exchange."""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import amqp as amqp_envelope

from ..base import Subscription
from ..errors import TransportError
from .connection import with_retries
from .consumer import _decode_bytes, _props_dict

if TYPE_CHECKING:
    from .transport import AmqpTransport

__all__ = ["AmqpSubscription"]

log = logging.getLogger("celeriac.transports.amqp")
#: Seconds between attempts to set the subscription up again after the broker refused.
_RETRY_PAUSE = 0.5


class AmqpSubscription(Subscription):
    """An exclusive, auto-deleted queue bound to the fanout exchange.

    After a reconnect the queue is declared, bound and consumed again without waiting for the
    broker's replies: a cluster whose node froze blocks queue declarations and bindings until
    it counts that node down (``net_ticktime``), and a worker reading its control channel must
    not stop consuming tasks meanwhile (the task consumer's channel on the same connection
    works all along). Broadcasts sent before the new queue is bound are not received, as with
    any subscription made later."""

    def __init__(self, transport: AmqpTransport, exchange: str) -> None:
        self.t = transport
        self.exchange = exchange
        self.inbox: collections.deque[WireMessage] = collections.deque()
        self._retry_at = 0.0
        # The first set-up is waited for: what is broadcast once subscribe() returns reaches us.
        with_retries(self._subscribe, self.t.reconnect, self.t.opts.retry_seconds)

    def _subscribe(self) -> None:
        self._setup()
        deadline = time.monotonic() + self.t.opts.retry_seconds
        while not self.ready:
            if isinstance(self.refusal, pika.exceptions.ChannelClosedByBroker):
                raise TransportError(
                    f"RabbitMQ at {self.t.node} refused the subscription to {self.exchange!r}: "
                    f"{self.refusal.reply_code} {self.refusal.reply_text}"
                )
            if time.monotonic() > deadline:
                raise TransportError(
                    f"RabbitMQ at {self.t.node} did not set up the subscription to "
                    f"{self.exchange!r} within {self.t.opts.retry_seconds:.0f} s"
                )
            self.t.connection().process_data_events(time_limit=0.05)

    def _setup(self) -> None:
        """Open a channel and ask for the exchange, queue, binding and consumer in turn; each
        step is sent when the broker answered the one before."""
        self.generation = self.t.generation
        self.ready = False
        self.refusal: BaseException | None = None
        self.ch = self.t.connection().channel()
        ch = self.ch._impl  # pika's asynchronous channel: nothing here waits for a reply
        ch.add_on_close_callback(lambda _ch, reason: setattr(self, "refusal", reason))

        def consume(queue: str) -> None:
            ch.basic_consume(queue, self._on_message, auto_ack=True,
                             callback=lambda _ok: setattr(self, "ready", True))  # fmt: skip

        def bind(declared: Any) -> None:
            queue = declared.method.queue
            ch.queue_bind(queue, self.exchange, routing_key="#",
                          callback=lambda _ok: consume(queue))  # fmt: skip

        def declare(_ok: Any) -> None:
            ch.queue_declare("", exclusive=True, auto_delete=True, callback=bind)

        self.t.fanout_exchange(ch, self.exchange, callback=declare)

    def _setup_again(self) -> None:
        """Set up on a new connection, or on a new channel after the broker closed ours (it
        refused a declaration: said once, tried again every ``_RETRY_PAUSE`` s)."""
        if self.generation == self.t.generation:
            now = time.monotonic()
            if now < self._retry_at:
                return
            if self._retry_at == 0.0:
                log.warning("RabbitMQ at %s closed the subscription to %r (%s); setting it up "
                            "again", self.t.node, self.exchange, self.refusal)  # fmt: skip
            self._retry_at = now + _RETRY_PAUSE
        self._setup()

    def _on_message(self, ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        try:
            self.inbox.append(amqp_envelope.unpack_wire(body, _decode_bytes(_props_dict(props))))
        except ProtocolError:
            pass  # a broadcast we cannot read is not for us

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        end = time.monotonic() + (timeout or 0.0)

        def pump() -> None:
            if self.generation != self.t.generation or not self.ch.is_open:
                self._setup_again()
            self.t.connection().process_data_events(time_limit=max(end - time.monotonic(), 0))

        while not self.inbox:
            with_retries(pump, self.t.reconnect, self.t.opts.retry_seconds)
            if time.monotonic() >= end:
                break
        return self.inbox.popleft() if self.inbox else None

    def close(self) -> None:
        try:
            if self.ch.is_open:
                self.ch.close()
        except Exception:  # the connection is already gone
            pass
