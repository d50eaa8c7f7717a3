"""``sqlite:///path`` results: durable, shared by every process on the machine (WAL mode)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from celeriac.protocol.result_tuples import decode_group, encode_group
from celeriac.protocol.results import (
    ResultRecord,
    group_key,
    result_key,
)
from celeriac.transports.sqlite import forksafe

from .base import (
    ChordJoin,
    ChordPart,
    ResultBackend,
    join_parts,
    part_member,
    pending,
    should_replace,
)

__all__ = ["SQLiteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
  key        TEXT PRIMARY KEY,
  value      BLOB NOT NULL,
  expires_at REAL
);
CREATE TABLE IF NOT EXISTS chord_entries (
  group_id TEXT NOT NULL,
  member   TEXT NOT NULL,
  value    BLOB NOT NULL,
  PRIMARY KEY (group_id, member)
);
CREATE TABLE IF NOT EXISTS rates (
  name TEXT PRIMARY KEY,
  due  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chords (
  group_id   TEXT PRIMARY KEY,
  size       INTEGER,
  done       INTEGER NOT NULL DEFAULT 0,
  expires_at REAL
);
"""


def _path(url: str) -> str:
    # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
    path = url.split("://", 1)[1].removeprefix("/") or "celeriac-results.db"
    if path == ":memory:":
        raise ValueError("the sqlite result backend needs a file: sqlite:///path/results.db")
    return path


class SQLiteBackend(ResultBackend):
    """Records keyed ``celery-task-meta-<id>`` (Celery's key), values as Celery's JSON."""

    transient_errors = (sqlite3.OperationalError,)  # "database is locked" outlasting the timeout

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.path = _path(url)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not cross threads.
        db = getattr(self._local, "db", None)
        if db is None:
            db = forksafe.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def store(self, record: ResultRecord) -> None:
        db = self._db()
        key = result_key(record.task_id)
        expires_at = None if self.expires is None else time.time() + self.expires
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
            old = self.decode(row[0]) if row else None
            if should_replace(old, record):
                db.execute(
                    "INSERT OR REPLACE INTO results (key, value, expires_at) VALUES (?, ?, ?)",
                    (key, self.encode(record), expires_at),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def get(self, task_id: str) -> ResultRecord:
        row = (
            self._db()
            .execute("SELECT value, expires_at FROM results WHERE key = ?", (result_key(task_id),))
            .fetchone()
        )
        if row is None or (row[1] is not None and row[1] < time.time()):
            return pending(task_id)
        return self.decode(row[0])

    def take_token(self, name: str, rate: float) -> float:
        # Wall-clock time: the processes sharing the file share the machine's clock.
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            row = db.execute("SELECT due FROM rates WHERE name = ?", (name,)).fetchone()
            due = max(row[0] if row else now, now)
            if due <= now:
                db.execute("INSERT OR REPLACE INTO rates VALUES (?, ?)", (name, now + 1.0 / rate))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return due - now if due > now else 0.0

    def set_chord_size(self, group_id: str, size: int) -> None:
        expires_at = None if self.expires is None else time.time() + self.expires
        self._db().execute(
            "INSERT OR REPLACE INTO chords (group_id, size, done, expires_at) VALUES (?, ?, 0, ?)",
            (group_id, size, expires_at),
        )

    def chord_part_return(self, part: ChordPart) -> ChordJoin | None:
        db = self._db()
        value = self.encode_value([part.task_id, part.index, part.state, part.result])
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT size, done FROM chords WHERE group_id = ?", (part.group_id,)
            ).fetchone()
            if row is not None and row[1]:
                db.execute("COMMIT")
                return None  # a late copy of a header task of a chord already joined
            db.execute(
                "INSERT OR IGNORE INTO chord_entries VALUES (?, ?, ?)",
                (part.group_id, part_member(part), value),
            )
            rows = db.execute(
                "SELECT value FROM chord_entries WHERE group_id = ?", (part.group_id,)
            ).fetchall()
            size = part.size or (row[0] if row is not None and row[0] else 0)
            done = bool(size) and len(rows) >= size
            if done:
                db.execute("DELETE FROM chord_entries WHERE group_id = ?", (part.group_id,))
                db.execute(
                    "INSERT OR REPLACE INTO chords (group_id, size, done, expires_at) "
                    "VALUES (?, ?, 1, ?)",
                    (part.group_id, size, time.time() + 86400),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if not done:
            return None
        entries = (self.decode_value(v) for (v,) in rows)
        return join_parts(ChordPart(part.group_id, t, i, st, r) for t, i, st, r in entries)

    def forget(self, task_id: str) -> None:
        self._db().execute("DELETE FROM results WHERE key = ?", (result_key(task_id),))

    def cleanup(self) -> None:
        self._db().execute("DELETE FROM results WHERE expires_at < ?", (time.time(),))

    def save_group(self, group_id: str, tree: Any) -> None:
        expires_at = None if self.expires is None else time.time() + self.expires
        self._db().execute(
            "INSERT OR REPLACE INTO results (key, value, expires_at) VALUES (?, ?, ?)",
            (group_key(group_id), encode_group(tree), expires_at),
        )

    def restore_group(self, group_id: str) -> Any:
        row = (
            self._db()
            .execute("SELECT value, expires_at FROM results WHERE key = ?", (group_key(group_id),))
            .fetchone()
        )
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        return decode_group(row[0])

    def delete_group(self, group_id: str) -> None:
        self._db().execute("DELETE FROM results WHERE key = ?", (group_key(group_id),))

    def close(self) -> None:
        super().close()
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
