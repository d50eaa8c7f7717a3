"""The SQLite consumer: rows claimed under a lease that fetch renews while the consumer lives."""

from __future__ import annotations

import sqlite3
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, Delivery, dead_letter_queue
from ..dead_letter import dead_letter_message
from ..errors import TransportError
from .connection import connect, guarded, write

__all__ = ["MAX_PRIORITY", "SQLiteConsumer", "clamp_priority"]

#: Priorities are clamped to 0..MAX_PRIORITY on publish (SPEC.md §6.7).
MAX_PRIORITY = 9
# Idle polling: SQLite has no notification, so wait a little longer after each empty look.
POLL_MIN, POLL_MAX, POLL_GROWTH = 0.005, 0.05, 1.5


def clamp_priority(wire: WireMessage) -> int:
    value = wire.properties.get("priority")
    return min(max(value, 0), MAX_PRIORITY) if isinstance(value, int) else 0


def _claim_sql(queues: int, columns: str) -> str:
    """Ready rows of ``:q0..`` in claim order, at most ``:room``.

    One index seek per queue and priority level (rows a foreign writer left outside 0..9 get a
    level of their own), so claiming costs the same behind any number of delayed or held rows.
    """
    levels = [f"priority > {MAX_PRIORITY}"]
    levels += [f"priority = {p}" for p in range(MAX_PRIORITY, -1, -1)]
    levels += ["priority < 0"]
    parts = [
        f"SELECT * FROM (SELECT {columns} FROM messages WHERE queue = :q{q} AND {level} "
        "AND claimed_by IS NULL AND available_at <= :now ORDER BY available_at, id LIMIT :room)"
        for q in range(queues)
        for level in levels
    ]
    return " UNION ALL ".join(parts) + " ORDER BY priority DESC, available_at, id LIMIT :room"


# Rows whose consumer stopped renewing its lease become ready again (SPEC.md §6.7).
_RESTORE = (
    "UPDATE messages SET claimed_by = NULL, claimed_until = NULL "
    "WHERE claimed_by IS NOT NULL AND claimed_until < ?"
)
_LAPSED = "SELECT 1 FROM messages WHERE claimed_by IS NOT NULL AND claimed_until < ? LIMIT 1"
_RELEASE = "UPDATE messages SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?"


def _release(db: sqlite3.Connection, owner: str, held: set[int]) -> None:
    """Give back every row ``owner`` holds and close its connection (close() or collection)."""
    try:
        if held:  # else no write, so closing never waits for another process's write lock
            db.execute(_RELEASE, (owner,))
            held.clear()
    finally:
        db.close()


class SQLiteConsumer(Consumer):
    """Claims rows for itself in BEGIN IMMEDIATE transactions; a lapsed claim is anyone's."""

    def __init__(
        self, path: str, visibility_timeout: float, queues: Sequence[str], prefetch: int
    ) -> None:
        super().__init__(queues, prefetch)
        self.path = path
        self.visibility_timeout = visibility_timeout
        self.db = connect(path)
        self.id = uuid.uuid4().hex
        self.unsettled: set[int] = set()
        self._renewed = time.monotonic()
        self._idle = True
        self._claim = _claim_sql(len(self.queues), "id, queue, payload, deliveries, priority, "
                                 "available_at")  # fmt: skip
        self._peek = _claim_sql(len(self.queues), "id, priority, available_at")
        self._params: dict[str, Any] = {f"q{i}": q for i, q in enumerate(self.queues)}
        # Dropped without close(), a consumer still gives its rows back at once.
        self._finalizer = weakref.finalize(self, _release, self.db, self.id, self.unsettled)

    @guarded
    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        if not self._finalizer.alive:
            raise TransportError(f"sqlite broker file {self.path}: consumer used after close()")
        end = None if timeout is None else time.monotonic() + timeout
        pause = POLL_MIN
        while True:
            room = min(max_messages, self.prefetch - len(self.unsettled))
            got = self._step(room)
            if got or room <= 0:
                return got
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return []
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * POLL_GROWTH, POLL_MAX)

    def _step(self, room: int) -> list[Delivery]:
        """Renew this consumer's lease when due, restore lapsed claims, claim up to ``room``."""
        now = time.time()
        vt = self.visibility_timeout
        # Every row's lease runs at least vt past the last renewal; renewing once a third of it
        # has passed keeps a consumer that fetches every vt/3 safe, with a write per vt/3, not
        # per fetch.
        renew = bool(self.unsettled) and time.monotonic() - self._renewed >= vt / 3
        if not renew and (room <= 0 or (self._idle and not self._worth_a_write(room, now))):
            return []
        until = now + vt
        rows: list[Any] = []
        with write(self.db) as db:
            db.execute(_RESTORE, (now,))
            if renew:
                db.execute("UPDATE messages SET claimed_until = ? WHERE claimed_by = ?",
                           (until, self.id))  # fmt: skip
                self._renewed = time.monotonic()
            if room > 0:
                rows = db.execute(
                    self._claim, {**self._params, "now": now, "room": room}
                ).fetchall()
                if rows:
                    db.executemany(
                        "UPDATE messages SET claimed_by = ?, claimed_until = ?, "
                        "deliveries = deliveries + 1 WHERE id = ?",
                        [(self.id, until, r[0]) for r in rows],
                    )
        self._idle = not rows
        self.unsettled.update(r[0] for r in rows)
        return [_delivery(r[1], r[0], bytes(r[2]), r[3]) for r in rows]

    def _worth_a_write(self, room: int, now: float) -> bool:
        """While idle, look without the write lock first, so idle pollers never contend for it."""
        params = {**self._params, "now": now, "room": 1}
        if self.db.execute(self._peek, params).fetchone() is not None:
            return True
        return self.db.execute(_LAPSED, (now,)).fetchone() is not None

    @guarded
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        ids = [d.tag for d in deliveries if d.tag in self.unsettled]
        if not ids:
            return
        with write(self.db) as db:
            # A row whose lease lapsed may be someone else's now: leave it (at-least-once).
            db.executemany(
                "DELETE FROM messages WHERE id = ? AND claimed_by = ?", [(i, self.id) for i in ids]
            )
        self.unsettled.difference_update(ids)

    @guarded
    def reject(self, delivery: Delivery, reason: str) -> None:
        if delivery.tag not in self.unsettled:
            return
        dead = dead_letter_queue(delivery.queue)
        copy = dead_letter_message(delivery, reason)
        tag = str(uuid.uuid4())
        payload = json_envelope.pack_wire(copy, routing_key=dead, delivery_tag=tag)
        # The row moves: a fresh, unclaimed, never-delivered message of the dead-letter queue.
        self.db.execute(
            "UPDATE messages SET queue = ?, payload = ?, delivery_tag = ?, priority = ?, "
            "available_at = ?, claimed_by = NULL, claimed_until = NULL, deliveries = 0 "
            "WHERE id = ? AND claimed_by = ?",
            (dead, payload, tag, clamp_priority(copy), time.time(), delivery.tag, self.id),
        )
        self.unsettled.discard(delivery.tag)

    @guarded
    def requeue(self, delivery: Delivery) -> None:
        if delivery.tag not in self.unsettled:
            return
        # Its available_at is kept, so it goes back to the front; `deliveries` marks it redelivered.
        self.db.execute(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL "
            "WHERE id = ? AND claimed_by = ?",
            (delivery.tag, self.id),
        )
        self.unsettled.discard(delivery.tag)
        self._idle = False

    @guarded
    def close(self) -> None:
        self._finalizer()


def _delivery(queue: str, row_id: int, payload: bytes, before: int) -> Delivery:
    """A claimed row as a delivery; ``before`` is how many times it was delivered before."""
    redelivered = before > 0
    try:
        wire, marked = json_envelope.unpack_consumed(payload)
    except ProtocolError as exc:
        return Delivery(queue, None, row_id, redelivered, raw=payload, error=exc)
    return Delivery(queue, wire, row_id, redelivered or marked, deliveries=before + 1)
