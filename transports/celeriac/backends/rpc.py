"""``rpc://`` results: sent back as messages to the caller's reply queue, as Celery's RPC backend
does (SPEC.md §7.6). Nothing is stored: only the client that sent a task can read its result,
and only once it is listening.

A worker publishes each state of a task (the same record a Redis backend would store) to the
queue named by the task message's ``reply_to``, with ``correlation_id`` = the task id. A client
consumes its own reply queue (``reply_to``: one per backend instance, declared on first use) and
keeps what arrives by task id.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from celeriac.protocol import WireMessage
from celeriac.protocol.results import ResultRecord, decode_result
from celeriac.protocol.serializers import get_serializer
from celeriac.protocol.states import READY_STATES
from celeriac.transports import Delivery, QueueSpec, Transport, TransportError, open_transport

from .base import ChordJoin, ChordPart, ResultBackend, pending

__all__ = ["RPCBackend"]

log = logging.getLogger("celeriac.backends.rpc")


class RPCBackend(ResultBackend):
    """Results over the broker itself (``broker_url``), to each caller's reply queue."""

    #: Chord parts cannot be counted without a store.
    supports_chords = False

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        broker_url = options.get("broker_url")
        if not broker_url:
            raise ValueError(
                "the rpc:// result backend sends results over the broker: open it with "
                "broker_url=... (an App does this for you)"
            )
        self.broker_url: str = broker_url
        #: The queue this client's tasks name in ``reply_to`` (Celery's ``oid``).
        self.reply_to: str = options.get("reply_to") or str(uuid.uuid4())
        self._local = threading.local()  # one publishing transport per thread
        self._transports: list[Transport] = []
        self._changed = threading.Condition()
        self._seen: dict[str, ResultRecord] = {}
        self._reader: threading.Thread | None = None
        self._reader_ready = threading.Event()
        self._reader_error: BaseException | None = None
        self._closing = threading.Event()

    # -- worker side ---------------------------------------------------------------------------
    def _publisher(self) -> Transport:
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is None:
            transport = open_transport(self.broker_url)
            self._local.transport = transport
            with self._changed:
                self._transports.append(transport)
        return transport

    def store(self, record: ResultRecord) -> None:
        """Without a reply queue there is nowhere to send a result; see ``store_for``."""
        with self._changed:
            self._remember(record)
            self._changed.notify_all()

    def store_for(
        self, record: ResultRecord, reply_to: str | None, correlation_id: str | None
    ) -> None:
        if not reply_to:
            self.store(record)  # run here (eagerly): the caller is this process
            return
        message = WireMessage(
            body=self.encode(record),
            content_type=self._content_type,
            content_encoding=get_serializer(self.serializer).content_encoding,
            headers={},
            properties={"correlation_id": correlation_id or record.task_id, "delivery_mode": 1},
        )
        try:
            self._publisher().publish(reply_to, message)
        except TransportError as exc:
            # The caller went away with its queue: the result has no reader left.
            log.warning("result of %s not delivered to %s: %s", record.task_id, reply_to, exc)

    # -- client side ---------------------------------------------------------------------------
    def reply_queue(self) -> str:
        """The reply queue, declared and read by a background thread before any task names it
        (a reply sent to a queue that does not exist yet would be dropped)."""
        with self._changed:
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read, name=f"celeriac-rpc-{self.reply_to[:8]}", daemon=True
                )
                self._reader.start()
        self._reader_ready.wait(30)
        if self._reader_error is not None:
            raise self._reader_error
        return self.reply_to

    def _read(self) -> None:
        # Consumers belong to one thread, so one thread reads the reply queue for all waiters.
        try:
            transport = open_transport(self.broker_url)
            transport.declare_queue(QueueSpec(self.reply_to, durable=False))
            consumer = transport.consumer([self.reply_to], prefetch=100)
        except BaseException as exc:
            self._reader_error = exc
            self._reader_ready.set()
            return
        self._reader_ready.set()
        try:
            while not self._closing.is_set():
                deliveries = consumer.fetch(100, timeout=0.5)
                records = [r for r in map(self._read_reply, deliveries) if r is not None]
                if deliveries:
                    consumer.ack(deliveries)
                if records:
                    with self._changed:
                        for record in records:
                            self._remember(record)
                        self._changed.notify_all()
        except Exception:
            log.exception("reading replies on %s failed", self.reply_to)
        finally:
            consumer.close()
            transport.close()

    def _read_reply(self, delivery: Delivery) -> ResultRecord | None:
        if delivery.message is None:
            log.warning("unreadable reply on %s: %s", self.reply_to, delivery.error)
            return None
        try:
            message = delivery.message
            # The worker's result serializer, which the message names.
            return decode_result(message.body, message.content_type, accept=self._accept)
        except Exception as exc:  # a foreign or corrupt reply must not stop the reader
            log.warning("unreadable reply on %s: %s", self.reply_to, exc)
            return None

    def _remember(self, record: ResultRecord) -> None:
        old = self._seen.get(record.task_id)
        if old is None or old.status not in READY_STATES:
            self._seen[record.task_id] = record

    def get(self, task_id: str) -> ResultRecord:
        self.reply_queue()
        with self._changed:
            return self._seen.get(task_id) or pending(task_id)

    def wait(
        self, task_id: str, timeout: float | None = None, interval: float = 0.05
    ) -> ResultRecord:
        self.reply_queue()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                record = self._seen.get(task_id)
                if record is not None and record.status in READY_STATES:
                    return record
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout} s")
                self._changed.wait(left)

    def forget(self, task_id: str) -> None:
        with self._changed:
            self._seen.pop(task_id, None)

    def chord_part_return(self, part: ChordPart) -> ChordJoin | None:
        raise NotImplementedError(
            "the rpc:// result backend cannot count chord parts (nothing is stored); "
            "use a redis://, sqlite:// or memory:// result backend for chords"
        )

    def close(self) -> None:
        super().close()
        self._closing.set()
        if self._reader is not None:
            self._reader.join(5)
        with self._changed:
            for transport in self._transports:
                transport.close()
            self._transports.clear()
        self._local = threading.local()
