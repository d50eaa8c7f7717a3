"""SQLite connections that a fork never catches mid-call.

SQLite is not fork-safe: a process forked while another of its threads is inside an SQLite call
inherits that call's mutexes locked, and its own first SQLite call then waits forever (seen as a
prefork child that never ran its task; reproduced: 1 fork in 300 beside a busy thread). Every
call made through these connections passes a gate, and a fork in this process waits until no
thread is inside one (``os.register_at_fork``). Calls never wait for each other, only for a
fork: once a fork waits at the gate, new calls wait until it is done.
"""

from __future__ import annotations

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
            self.inside -= 1
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


def _gated(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    _GATE.enter()
    try:
        return call(*args, **kwargs)
    finally:
        _GATE.leave()


class ForkSafeCursor(sqlite3.Cursor):
    """A cursor whose every step into SQLite passes the gate."""

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        return _gated(super().execute, sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> Self:
        return _gated(super().executemany, sql, seq)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        return _gated(super().executescript, script)

    def fetchone(self) -> Any:
        return _gated(super().fetchone)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return _gated(super().fetchmany, self.arraysize if size is None else size)

    def fetchall(self) -> list[Any]:
        return _gated(super().fetchall)

    def __next__(self) -> Any:
        return _gated(super().__next__)


class ForkSafeConnection(sqlite3.Connection):
    """``sqlite3.Connection`` whose calls pass the fork gate (cursors included)."""

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
        _gated(super().commit)

    def rollback(self) -> None:
        _gated(super().rollback)

    def close(self) -> None:
        _gated(super().close)


def connect(path: str, **options: Any) -> ForkSafeConnection:
    """``sqlite3.connect`` with a ForkSafeConnection (opening passes the gate too)."""
    db = _gated(sqlite3.connect, path, **options, factory=ForkSafeConnection)
    return cast(ForkSafeConnection, db)
