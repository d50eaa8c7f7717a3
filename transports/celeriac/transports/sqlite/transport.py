"""The SQLite transport: one table of messages (SPEC.md §6.7), broadcast through leased inboxes."""

from __future__ import annotations

import sqlite3
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from celeriac.protocol import WireMessage
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from .connection import connect, guarded, write
from .consumer import SQLiteConsumer, clamp_priority
from .schema import path_of

__all__ = ["SQLiteSubscription", "SQLiteTransport"]

#: Seconds a subscriber stays registered without reading; get() renews it every third of that.
SUBSCRIBER_LEASE = 30.0

_INSERT = (
    "INSERT INTO messages (queue, priority, available_at, payload, delivery_tag) "
    "VALUES (?, ?, ?, ?, ?)"
)


def _row(queue: str, wire: WireMessage, at: float, exchange: str = "") -> tuple[Any, ...]:
    tag = str(uuid.uuid4())
    payload = json_envelope.pack_wire(wire, exchange=exchange, routing_key=queue, delivery_tag=tag)
    return (queue, clamp_priority(wire), at, payload, tag)


def inbox(subscriber: str) -> str:
    """The queue of the messages table a subscriber's broadcasts are copied into."""
    return f"celeriac.broadcast.{subscriber}"


class SQLiteTransport(Transport):
    """``sqlite:///path.db``: a durable broker in one file, shared by the processes of a machine.

    Option ``visibility_timeout`` (seconds, default 60): how long the rows of a consumer that
    stopped calling fetch (a killed process) stay claimed before they are delivered again.
    """

    schemes = ("sqlite",)
    capabilities = Capabilities(
        priorities=True,
        priority_order="higher-first",
        delayed_delivery=True,
        fanout=False,  # emulated with a table of leased subscribers
        per_message_ack=True,
        redelivery="visibility-timeout",
        ordering="fifo",
        shared=True,
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.path = path_of(url)
        self.visibility_timeout = float(options.get("visibility_timeout", 60.0))
        if self.visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        self.db: sqlite3.Connection | None = None

    def connect(self) -> None:
        if self.db is None:
            self.db = connect(self.path)

    def _conn(self) -> sqlite3.Connection:
        if self.db is None:
            self.db = connect(self.path)
        return self.db

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def declare_queue(self, spec: QueueSpec) -> None:
        """Queues are names in the messages table: nothing to create but the file."""
        self._conn()

    @guarded
    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        at = time.time() + (delay if delay and delay > 0 else 0.0)
        self._conn().execute(_INSERT, _row(queue, message, at))

    @guarded
    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        now = time.time()
        rows = [_row(queue, m, now) for m in messages]
        with write(self._conn()) as db:
            db.executemany(_INSERT, rows)

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        return SQLiteConsumer(self.path, self.visibility_timeout, queues, prefetch)

    # Ready means: due, and unclaimed or with a lapsed claim (it will be delivered again).
    _READY = (
        "FROM messages WHERE queue = ? AND available_at <= ? "
        "AND (claimed_by IS NULL OR claimed_until < ?)"
    )

    @guarded
    def purge(self, queue: str) -> int:
        now = time.time()
        with write(self._conn()) as db:
            return db.execute("DELETE " + self._READY, (queue, now, now)).rowcount

    @guarded
    def queue_length(self, queue: str) -> int:
        now = time.time()
        (count,) = (
            self._conn().execute("SELECT COUNT(*) " + self._READY, (queue, now, now)).fetchone()
        )
        return int(count)

    @guarded
    def broadcast(self, exchange: str, message: WireMessage) -> None:
        now = time.time()
        with write(self._conn()) as db:
            gone = [r[0] for r in db.execute("SELECT id FROM subscribers WHERE lease_until < ?",
                                             (now,))]  # fmt: skip
            if gone:  # subscribers that stopped renewing: drop them and what waits for them
                db.executemany("DELETE FROM subscribers WHERE id = ?", [(i,) for i in gone])
                db.executemany("DELETE FROM messages WHERE queue = ?", [(inbox(i),) for i in gone])
            ids = [r[0] for r in db.execute("SELECT id FROM subscribers WHERE exchange = ?",
                                            (exchange,))]  # fmt: skip
            db.executemany(_INSERT, [_row(inbox(i), message, now, exchange) for i in ids])

    @guarded
    def subscribe(self, exchange: str) -> Subscription:
        return SQLiteSubscription(self, exchange)


def _unsubscribe(
    consumer_close: Callable[[], object], db: sqlite3.Connection, subscriber: str
) -> None:
    try:
        db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber,))
        db.execute("DELETE FROM messages WHERE queue = ?", (inbox(subscriber),))
    finally:
        consumer_close()


class SQLiteSubscription(Subscription):
    """A leased row in ``subscribers`` and an inbox queue that broadcasts are copied into."""

    def __init__(self, transport: SQLiteTransport, exchange: str) -> None:
        self.path = transport.path
        self.id = uuid.uuid4().hex
        self.exchange = exchange
        self.consumer = SQLiteConsumer(
            transport.path, transport.visibility_timeout, [inbox(self.id)], prefetch=100
        )
        self.db = self.consumer.db
        self._renew()
        self._finalizer = weakref.finalize(
            self, _unsubscribe, self.consumer._finalizer, self.db, self.id
        )

    def _renew(self) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO subscribers (id, exchange, lease_until) VALUES (?, ?, ?)",
            (self.id, self.exchange, time.time() + SUBSCRIBER_LEASE),
        )
        self._renewed = time.monotonic()

    @guarded
    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if time.monotonic() - self._renewed > SUBSCRIBER_LEASE / 3:
                self._renew()
            left = None if end is None else max(end - time.monotonic(), 0.0)
            # Wait in slices, so a long wait still renews the lease.
            wait = SUBSCRIBER_LEASE / 3 if left is None else min(left, SUBSCRIBER_LEASE / 3)
            got = self.consumer.fetch(1, timeout=wait)
            if got:
                self.consumer.ack(got)
                if got[0].message is not None:
                    return got[0].message
                continue  # an unreadable broadcast (a control message) is skipped, as on Redis
            if end is not None and time.monotonic() >= end:
                return None

    @guarded
    def close(self) -> None:
        self._finalizer()
