"""SQLite connections that a fork never catches mid-call or mid-transaction.

SQLite is not fork-safe: a process forked while another of its threads is inside an SQLite call
inherits that call's mutexes locked, and its own first SQLite call then waits forever (seen as a
prefork child that never ran its task; reproduced: 1 fork in 300 beside a busy thread). A
process forked while another thread's connection holds a transaction (between ``BEGIN`` and
``COMMIT``, or a query whose rows are not all read) inherits SQLite's record of that lock: its
own connections to the same file then wait for a lock no one will release ("database is locked"
after the busy timeout: a prefork child forked while the worker stored a result in the sqlite
backend hung 30 s on its first result). Every call made through these connections passes a
gate, and a fork in this process waits until no thread is inside one (``os.register_at_fork``);
a connection in a transaction stays inside until it ends, and a query's rows are read within
its call. Calls never wait for each other, only for a fork: once a fork waits at the gate, new
calls wait until it is done (a transaction in progress goes on to its end).
"""

from __future__ import annotations

import collections
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Self, TypeVar, cast

__all__ = ["ForkSafeConnection", "connect"]

log = logging.getLogger("celeriac.transports.sqlite")
T = TypeVar("T")

#: How long a fork waits for the calls in progress (a call may wait on another process's lock).
_FORK_WAIT_S = 10.0


class _Gate:
    """Any number of SQLite calls at once, or a fork, never both."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.inside = 0
        self.forking = False

    def enter(self) -> None:
        with self.cond:
            while self.forking:
                self.cond.wait()
            self.inside += 1

    def leave(self) -> None:
        with self.cond:
            # Never below 0: a connection inherited in a transaction leaves a gate it never
            # entered in this (child) process.
            self.inside = max(self.inside - 1, 0)
            if self.inside == 0:
                self.cond.notify_all()

    def close_for_fork(self) -> None:
        # New calls wait from now on (else a thread calling in a loop keeps the gate busy for
        # ever); the calls in progress are waited for, bounded: a call may wait on a lock.
        with self.cond:
            self.forking = True
            deadline = time.monotonic() + _FORK_WAIT_S
            while self.inside:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("forking while %d SQLite call(s) are in progress", self.inside)
                    break
                self.cond.wait(left)

    def open_after_fork(self) -> None:
        with self.cond:
            self.forking = False
            self.cond.notify_all()

    def reset_in_child(self) -> None:
        # The child's only thread is the one that forked: nobody else is inside or waiting.
        self.cond = threading.Condition(threading.Lock())
        self.inside = 0
        self.forking = False


_GATE = _Gate()
os.register_at_fork(
    before=_GATE.close_for_fork,
    after_in_parent=_GATE.open_after_fork,
    after_in_child=_GATE.reset_in_child,
)


def _gated(db: sqlite3.Connection | None, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call`` inside the gate; ``db`` (the connection it uses) stays inside while it is in a
    transaction, so no fork happens between its ``BEGIN`` and its ``COMMIT``."""
    held = getattr(db, "_in_gate", False)
    if not held:
        _GATE.enter()
    try:
        return call(*args, **kwargs)
    finally:
        try:
            busy = db is not None and db.in_transaction
        except sqlite3.ProgrammingError:  # closed (which rolled back)
            busy = False
        if busy:
            db._in_gate = True  # type: ignore[union-attr]
        else:
            if held:
                db._in_gate = False  # type: ignore[union-attr]
            _GATE.leave()


class ForkSafeCursor(sqlite3.Cursor):
    """A cursor whose every step into SQLite passes the gate; a query's rows are all read in
    its ``execute`` (a statement left half read holds a read lock between calls)."""

    _rows: collections.deque[Any] | None = None

    def _run(self, call: Callable[..., Any], *args: Any) -> Self:
        def run() -> None:
            call(*args)
            rows = sqlite3.Cursor.fetchall(self) if self.description is not None else None
            self._rows = None if rows is None else collections.deque(rows)

        _gated(self.connection, run)
        return self

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        return self._run(super().execute, sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> Self:
        return self._run(super().executemany, sql, seq)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        return self._run(super().executescript, script)

    def fetchone(self) -> Any:
        if self._rows is None:
            return _gated(self.connection, super().fetchone)
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        n = self.arraysize if size is None else size
        if self._rows is None:
            return _gated(self.connection, super().fetchmany, n)
        return [self._rows.popleft() for _ in range(min(n, len(self._rows)))]

    def fetchall(self) -> list[Any]:
        if self._rows is None:
            return _gated(self.connection, super().fetchall)
        rows, self._rows = list(self._rows), collections.deque()
        return rows

    def __next__(self) -> Any:
        if self._rows is None:
            return _gated(self.connection, super().__next__)
        if not self._rows:
            raise StopIteration
        return self._rows.popleft()


class ForkSafeConnection(sqlite3.Connection):
    """``sqlite3.Connection`` whose calls pass the fork gate (cursors included)."""

    #: Whether this connection holds a place in the gate (it is in a transaction).
    _in_gate = False

    def cursor(self, factory: Any = ForkSafeCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self.cursor()
        return cursor.executemany(sql, seq)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self.cursor()
        return cursor.executescript(script)

    def commit(self) -> None:
        _gated(self, super().commit)

    def rollback(self) -> None:
        _gated(self, super().rollback)

    def close(self) -> None:
        _gated(self, super().close)


def connect(path: str, **options: Any) -> ForkSafeConnection:
    """``sqlite3.connect`` with a ForkSafeConnection (opening passes the gate too)."""
    db = _gated(None, sqlite3.connect, path, **options, factory=ForkSafeConnection)
    return cast(ForkSafeConnection, db)
