"""Connections to the broker file: WAL, lock waits, write transactions, errors naming the file."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from ..errors import BrokerUnavailable, TransportError
from . import forksafe
from .schema import SCHEMA

__all__ = ["BUSY_TIMEOUT", "connect", "guarded", "write"]

#: Seconds a statement waits for another process's write lock before failing.
BUSY_TIMEOUT = 30.0


def connect(path: str) -> sqlite3.Connection:
    """An autocommit connection to the broker file, in WAL mode, with the tables created."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise BrokerUnavailable(
            f"sqlite broker file {path}: its folder {folder} does not exist; "
            "create it or fix the URL"
        )
    try:
        # Autocommit: transactions are begun explicitly, IMMEDIATE, where a claim needs one.
        db = forksafe.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise BrokerUnavailable(f"sqlite broker file {path}: {exc}; {_hint(exc)}") from exc
    try:
        # WAL: readers (idle pollers) never block the writer, and commits need no fsync with
        # synchronous=NORMAL (a process crash loses nothing; a power cut may lose the last commits).
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # The claim's small sorts stay in memory (temp files made each claim cost ~0.5 ms).
        db.execute("PRAGMA temp_store=MEMORY")
        db.executescript(SCHEMA)
    except sqlite3.Error as exc:
        db.close()
        raise BrokerUnavailable(f"sqlite broker file {path}: {exc}; {_hint(exc)}") from exc
    return db


@contextmanager
def write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, holding the write lock from its start so two writers never
    deadlock upgrading read locks (waits up to BUSY_TIMEOUT for it)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _hint(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return f"another process held the write lock for over {BUSY_TIMEOUT:.0f} s"
    if "readonly" in text or "unable to open" in text or "permission" in text:
        return "check that this user may read and write the file and its folder"
    if "malformed" in text or "not a database" in text:
        return "the file is not an intact SQLite database; point the URL at another file"
    if "disk" in text or "full" in text:
        return "check the free space and health of the disk"
    return "check the file and its folder"


class _HasPath(Protocol):
    path: str


F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """Turn an SQLite error inside ``method`` into a TransportError naming the file."""

    @functools.wraps(method)
    def wrapper(self: _HasPath, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise TransportError(f"sqlite broker file {self.path}: {exc}; {_hint(exc)}") from exc

    return wrapper  # type: ignore[return-value]
