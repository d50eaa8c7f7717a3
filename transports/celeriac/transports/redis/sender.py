"""Commands written in one go on the one connection a transport publishes on, replies read.

A publish is one round trip; what redis-py adds around it (taking a connection from the pool and
checking its health, the pipeline object, packing) cost about as much as the round trip itself.

With a publish window (``publish_window=N``), a publish returns once its commands are written,
and the replies of up to N messages are read later, all at once: a delay loop then stops paying a
round trip per task. What was written and not yet acknowledged is kept, and written again on a
new connection if the old one breaks (at least once, as every redelivery here).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import redis

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:  # redis[hiredis] packs commands in C; without it, redis-py's own packer
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - the redis extra installs hiredis
    _pack_command = None

log = logging.getLogger("celeriac.transports.redis")

_BROKEN = (redis.ConnectionError, redis.TimeoutError)


class _Held:
    """A pool connection one thread keeps, with what it wrote and has not read replies to."""

    def __init__(self, pool: Any) -> None:
        self.pool, self.pid = pool, os.getpid()
        self.conn = pool.get_connection()
        #: (replies to read, packed commands, messages in them), oldest first.
        self.unread: deque[tuple[int, list[bytes], int]] = deque()
        self.unread_messages = 0
        #: The connection broke with replies unread: write those commands again first.
        self.resend = False

    def write(self, packed: list[bytes]) -> None:
        try:
            self.conn.send_packed_command(packed, check_health=False)
        except _BROKEN:
            self.conn.disconnect()
            self.resend = True

    def settle(self) -> None:
        """Read every reply still owed (writing the commands again on a new connection if the
        old one broke); raises the first error Redis answered, once every reply is read."""
        conn = self.conn

        def attempt() -> None:
            if self.resend:
                for _, packed, _ in self.unread:
                    conn.send_packed_command(packed, check_health=False)
                self.resend = False
            error: redis.ResponseError | None = None
            while self.unread:
                replies, _, messages = self.unread[0]
                for _ in range(replies):
                    try:
                        conn.read_response()
                    except redis.ResponseError as exc:
                        error = error or exc
                self.unread.popleft()
                self.unread_messages -= messages
            if error is not None:
                raise error

        def broken(_error: Exception) -> None:
            conn.disconnect()
            self.resend = True

        try:
            conn.retry.call_with_retry(attempt, broken)
        except _BROKEN:
            conn.disconnect()
            self.resend = True  # kept: the next publish or flush tries again
            raise

    def __del__(self) -> None:
        try:
            if self.unread:
                self.settle()  # the thread ended with messages not yet acknowledged
            self.pool.release(self.conn)
        except Exception as exc:
            if self.unread_messages:
                log.error(
                    "Redis: %d published message(s) were not acknowledged before their thread "
                    "ended (%s); they may not have reached the broker",
                    self.unread_messages,
                    exc,
                )


class Sender:
    """Writes command batches for one ``redis.Redis`` client and reads their replies, on one
    connection: a transport is lent to one thread at a time (the app's pool of producers), so
    threads take turns on it rather than each keeping a connection of its own."""

    def __init__(self, client: redis.Redis, window: int = 0) -> None:
        self.pool = client.connection_pool
        self.window = window
        self._lock = threading.RLock()
        self._current: _Held | None = None

    def _held(self) -> _Held:
        held = self._current
        if held is None or held.pid != os.getpid():  # a forked child opens its own
            held = self._current = _Held(self.pool)
        return held

    def send(self, commands: Sequence[tuple[Any, ...]], messages: int = 1) -> None:
        """Write ``commands`` (holding ``messages`` messages); read their replies now, or, with
        a window, once the window is full. Retried as the client retries."""
        with self._lock:
            self._send(commands, messages)

    def call(self, commands: Sequence[tuple[Any, ...]]) -> None:
        """Write ``commands`` and read every reply owed, theirs included (on the publishing
        connection, so a declaration takes no second connection)."""
        with self._lock:
            self._send(commands, 0)
            self._held().settle()

    def _send(self, commands: Sequence[tuple[Any, ...]], messages: int) -> None:
        held = self._held()
        if _pack_command is not None:
            packed = [b"".join([_pack_command(c) for c in commands])]
        else:
            packed = [held.conn.pack_commands(commands)]
        held.unread.append((len(commands), packed, messages))
        held.unread_messages += messages
        if held.resend:
            held.settle()  # what a broken connection lost goes first, this batch with it
        else:
            held.write(packed)
        if held.resend or held.unread_messages > self.window:
            try:
                held.settle()
            except _BROKEN:
                if self.window <= 0:
                    held.unread.clear()  # the caller is told this publish failed: not kept
                    held.unread_messages = 0
                raise

    def flush(self) -> None:
        """Read every reply owed."""
        with self._lock:
            held = self._current
            if held is not None and held.pid == os.getpid() and held.unread:
                held.settle()

    def flush_all(self) -> None:
        """Read every reply owed (on close)."""
        self.flush()
