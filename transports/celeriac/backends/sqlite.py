"""``sqlite:///path`` results: durable, shared by every process on the machine (WAL mode)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from celeriac.protocol.results import ResultRecord, decode_result, encode_result, result_key
from celeriac.protocol.serializers import dumps, loads

from .base import ResultBackend, pending, should_replace

__all__ = ["SQLiteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
  key        TEXT PRIMARY KEY,
  value      BLOB NOT NULL,
  expires_at REAL
);
CREATE TABLE IF NOT EXISTS chord_parts (
  group_id TEXT NOT NULL,
  idx      INTEGER NOT NULL,
  value    BLOB NOT NULL,
  PRIMARY KEY (group_id, idx)
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
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
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
            old = decode_result(row[0]) if row else None
            if should_replace(old, record):
                db.execute(
                    "INSERT OR REPLACE INTO results (key, value, expires_at) VALUES (?, ?, ?)",
                    (key, encode_result(record), expires_at),
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
        return decode_result(row[0])

    def chord_part_return(
        self, group_id: str, index: int, size: int, result: Any
    ) -> list[Any] | None:
        db = self._db()
        value, _, _ = dumps([result])
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR REPLACE INTO chord_parts VALUES (?, ?, ?)", (group_id, index, value)
            )
            rows = db.execute(
                "SELECT idx, value FROM chord_parts WHERE group_id = ? ORDER BY idx", (group_id,)
            ).fetchall()
            done = len(rows) >= size
            if done:
                db.execute("DELETE FROM chord_parts WHERE group_id = ?", (group_id,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [loads(v, "application/json")[0] for _, v in rows] if done else None

    def forget(self, task_id: str) -> None:
        self._db().execute("DELETE FROM results WHERE key = ?", (result_key(task_id),))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
