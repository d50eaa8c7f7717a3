"""The SQLite broker's tables (SPEC.md §6.7) and how a URL names the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import BrokerUnavailable

__all__ = ["DEFAULT_PATH", "connect", "path_of"]

DEFAULT_PATH = "celeriac-broker.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id            INTEGER PRIMARY KEY,
  queue         TEXT    NOT NULL,
  priority      INT     NOT NULL DEFAULT 0,
  available_at  REAL    NOT NULL,
  payload       BLOB    NOT NULL,
  delivery_tag  TEXT    NOT NULL,
  claimed_by    TEXT,
  claimed_until REAL,
  deliveries    INT     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, priority DESC, id);
CREATE INDEX IF NOT EXISTS messages_claims ON messages (claimed_by);
CREATE TABLE IF NOT EXISTS subscribers (
  id          TEXT PRIMARY KEY,
  exchange    TEXT NOT NULL,
  lease_until REAL NOT NULL
);
"""


def path_of(url: str) -> str:
    """SQLAlchemy's convention: ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``."""
    path = url.split("://", 1)[1].removeprefix("/")
    if path == ":memory:":
        raise BrokerUnavailable(
            "sqlite:///:memory: cannot be shared between connections; name a file instead"
        )
    return path or DEFAULT_PATH


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL journal, waiting up to 30 s for locks."""
    if not Path(path).resolve().parent.is_dir():
        raise BrokerUnavailable(
            f"sqlite broker file {path}: its folder does not exist; create it or fix the URL"
        )
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise BrokerUnavailable(f"sqlite broker file {path}: {exc}") from exc
    return db
