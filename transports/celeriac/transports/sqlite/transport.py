"""The SQLite transport: rows claimed under a lease, renewed while the consumer lives."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, Delivery, QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..dead_letter import dead_letter_message
from .schema import connect, path_of

__all__ = ["SQLiteTransport"]

_SUBSCRIBER_LEASE = 30.0
_POLL_MIN, _POLL_MAX = 0.002, 0.05


def _priority(wire: WireMessage) -> int:
    value = wire.properties.get("priority")
    return min(max(value, 0), 9) if isinstance(value, int) else 0


@contextmanager
def _write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once so two writers never deadlock."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class SQLiteTransport(Transport):
    """``sqlite:///path.db``; options: ``visibility_timeout`` (s) a dead consumer's rows wait."""

    schemes = ("sqlite",)
    capabilities = Capabilities(
        priorities=True,
        priority_order="higher-first",
        delayed_delivery=True,
        fanout=False,
        per_message_ack=True,
        redelivery="visibility-timeout",
        ordering="fifo",
        shared=True,
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.path = path_of(url)
        self.visibility_timeout = float(options.get("visibility_timeout", 60.0))
        self.db: sqlite3.Connection | None = None

    def connect(self) -> None:
        if self.db is None:
            self.db = connect(self.path)

    def _conn(self) -> sqlite3.Connection:
        if self.db is None:
            self.connect()
        assert self.db is not None
        return self.db

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def declare_queue(self, spec: QueueSpec) -> None:
        """Queues are names in the messages table; nothing to create."""
        self._conn()

    def _row(self, queue: str, wire: WireMessage, delay: float | None) -> tuple[Any, ...]:
        tag = str(uuid.uuid4())
        payload = json_envelope.pack_wire(wire, routing_key=queue, delivery_tag=tag)
        return (queue, _priority(wire), time.time() + (delay or 0.0), payload, tag)

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        self._conn().execute(
            "INSERT INTO messages (queue, priority, available_at, payload, delivery_tag) "
            "VALUES (?, ?, ?, ?, ?)",
            self._row(queue, message, delay),
        )

    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        rows = [self._row(queue, m, None) for m in messages]
        with _write(self._conn()) as db:
            db.executemany(
                "INSERT INTO messages (queue, priority, available_at, payload, delivery_tag) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        return SQLiteConsumer(self, queues, prefetch)

    def purge(self, queue: str) -> int:
        now = time.time()
        with _write(self._conn()) as db:
            cursor = db.execute(
                "DELETE FROM messages WHERE queue = ? AND available_at <= ? "
                "AND (claimed_by IS NULL OR claimed_until < ?)",
                (queue, now, now),
            )
        return cursor.rowcount

    def queue_length(self, queue: str) -> int:
        now = time.time()
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM messages WHERE queue = ? AND available_at <= ? "
                "AND (claimed_by IS NULL OR claimed_until < ?)",
                (queue, now, now),
            )
            .fetchone()
        )
        return int(row[0])

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        now = time.time()
        with _write(self._conn()) as db:
            db.execute("DELETE FROM subscribers WHERE lease_until < ?", (now,))
            ids = [
                r[0]
                for r in db.execute("SELECT id FROM subscribers WHERE exchange = ?", (exchange,))
            ]
            db.executemany(
                "INSERT INTO messages (queue, priority, available_at, payload, delivery_tag) "
                "VALUES (?, ?, ?, ?, ?)",
                [self._row(_inbox(i), message, None) for i in ids],
            )

    def subscribe(self, exchange: str) -> Subscription:
        return SQLiteSubscription(self, exchange)


def _inbox(subscriber: str) -> str:
    return f"celeriac.broadcast.{subscriber}"


class SQLiteConsumer(Consumer):
    """Claims rows for itself; renews the claims each fetch; a lapsed claim is anyone's."""

    def __init__(self, transport: SQLiteTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.transport = transport
        self.db = connect(transport.path)
        self.id = uuid.uuid4().hex
        self.unsettled: set[int] = set()
        self._marks = ",".join("?" * len(self.queues))

    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        end = None if timeout is None else time.monotonic() + timeout
        pause = _POLL_MIN
        while True:
            got = self._claim(min(max_messages, self.prefetch - len(self.unsettled)))
            if got or (end is not None and time.monotonic() >= end):
                return got
            if len(self.unsettled) >= self.prefetch:
                return []
            # SQLite has no notification: poll, slowly backing off while idle.
            time.sleep(pause if end is None else min(pause, max(end - time.monotonic(), 0)))
            pause = min(pause * 2, _POLL_MAX)

    def _claim(self, room: int) -> list[Delivery]:
        now = time.time()
        until = now + self.transport.visibility_timeout
        with _write(self.db) as db:
            if self.unsettled:  # this consumer is alive: its claims hold
                db.execute(
                    "UPDATE messages SET claimed_until = ? WHERE claimed_by = ?", (until, self.id)
                )
            if room <= 0:
                return []
            rows = db.execute(
                "SELECT id, queue, payload, deliveries FROM messages "
                f"WHERE queue IN ({self._marks}) "
                "AND available_at <= ? AND (claimed_by IS NULL OR claimed_until < ?) "
                "ORDER BY priority DESC, id LIMIT ?",
                (*self.queues, now, now, room),
            ).fetchall()
            if rows:
                db.executemany(
                    "UPDATE messages SET claimed_by = ?, claimed_until = ?, "
                    "deliveries = deliveries + 1 WHERE id = ?",
                    [(self.id, until, r[0]) for r in rows],
                )
        self.unsettled.update(r[0] for r in rows)
        return [
            _delivery(queue, row_id, bytes(payload), deliveries > 0)
            for row_id, queue, payload, deliveries in rows
        ]

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        ids = [d.tag for d in deliveries if d.tag in self.unsettled]
        if ids:
            with _write(self.db) as db:
                db.executemany(
                    "DELETE FROM messages WHERE id = ? AND claimed_by = ?",
                    [(i, self.id) for i in ids],
                )
            self.unsettled.difference_update(ids)

    def reject(self, delivery: Delivery, reason: str) -> None:
        if delivery.tag not in self.unsettled:
            return
        dead = QueueSpec(delivery.queue).dead_letter_queue
        payload = json_envelope.pack_wire(
            dead_letter_message(delivery, reason), routing_key=dead, delivery_tag=str(uuid.uuid4())
        )
        with _write(self.db) as db:
            db.execute(
                "UPDATE messages SET queue = ?, payload = ?, priority = 0, available_at = ?, "
                "claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
                (dead, payload, time.time(), delivery.tag, self.id),
            )
        self.unsettled.discard(delivery.tag)

    def requeue(self, delivery: Delivery) -> None:
        if delivery.tag in self.unsettled:
            self.db.execute(
                "UPDATE messages SET claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND claimed_by = ?",
                (delivery.tag, self.id),
            )
            self.unsettled.discard(delivery.tag)

    def close(self) -> None:
        try:
            if self.unsettled:
                self.db.execute(
                    "UPDATE messages SET claimed_by = NULL, claimed_until = NULL "
                    "WHERE claimed_by = ?",
                    (self.id,),
                )
                self.unsettled.clear()
        finally:
            self.db.close()


def _delivery(queue: str, row_id: int, payload: bytes, redelivered: bool) -> Delivery:
    try:
        wire, info = json_envelope.unpack_wire(payload)
    except ProtocolError as exc:
        return Delivery(queue, None, row_id, redelivered, raw=payload, error=exc)
    return Delivery(queue, wire, row_id, redelivered or info.redelivered)


class SQLiteSubscription(Subscription):
    """A leased inbox queue that broadcasts are copied into."""

    def __init__(self, transport: SQLiteTransport, exchange: str) -> None:
        self.id = uuid.uuid4().hex
        self.exchange = exchange
        self.db = connect(transport.path)
        self._renew()
        self.consumer = SQLiteConsumer(transport, [_inbox(self.id)], prefetch=100)

    def _renew(self) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO subscribers VALUES (?, ?, ?)",
            (self.id, self.exchange, time.time() + _SUBSCRIBER_LEASE),
        )
        self._renewed = time.monotonic()

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        if time.monotonic() - self._renewed > _SUBSCRIBER_LEASE / 3:
            self._renew()
        got = self.consumer.fetch(1, timeout=timeout or 0)
        if not got:
            return None
        self.consumer.ack(got)
        return got[0].message

    def close(self) -> None:
        self.db.execute("DELETE FROM subscribers WHERE id = ?", (self.id,))
        self.db.execute("DELETE FROM messages WHERE queue = ?", (_inbox(self.id),))
        self.consumer.close()
        self.db.close()
