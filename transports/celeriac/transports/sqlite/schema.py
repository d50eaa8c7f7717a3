"""The SQLite broker's tables (SPEC.md §6.7) and how a URL names the file."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..errors import TransportError

__all__ = ["DEFAULT_PATH", "SCHEMA", "path_of"]

#: The file ``sqlite://`` names, in the working folder; the SDK's default broker.
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
-- Ready rows in claim order. Claimed rows leave this index, and a claim seeks each priority
-- level, so neither held nor delayed rows are ever scanned past.
CREATE INDEX IF NOT EXISTS messages_next
  ON messages (queue, priority, available_at, id) WHERE claimed_by IS NULL;
CREATE INDEX IF NOT EXISTS messages_owner ON messages (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_lease ON messages (claimed_until) WHERE claimed_by IS NOT NULL;
-- Indexes of the first layout (claims ordered by id alone).
DROP INDEX IF EXISTS messages_ready;
DROP INDEX IF EXISTS messages_claims;
CREATE TABLE IF NOT EXISTS subscribers (
  id          TEXT PRIMARY KEY,
  exchange    TEXT NOT NULL,
  lease_until REAL NOT NULL
);
"""


def path_of(url: str) -> str:
    """The absolute path of the file ``url`` names, after SQLAlchemy's convention.

    ``sqlite:///relative.db`` (from the working folder), ``sqlite:////absolute/path.db``;
    ``sqlite://`` alone is :data:`DEFAULT_PATH`. ``:memory:`` is refused: a database in memory
    belongs to one connection, and every consumer opens its own.
    """
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise TransportError(
            f"{url!r}: a sqlite broker URL takes no query; pass options as transport options "
            "(broker_transport_options), e.g. visibility_timeout"
        )
    if parts.netloc:
        raise TransportError(
            f"{url!r}: a sqlite broker URL has no host; write sqlite:///relative.db or "
            "sqlite:////absolute/path.db"
        )
    path = parts.path.removeprefix("/")
    if path == ":memory:" or path.startswith("file::memory:"):
        raise TransportError(
            f"{url!r}: an in-memory SQLite database cannot be shared between connections, and "
            "every consumer opens its own; name a file (sqlite:///broker.db), or use memory://"
        )
    return os.path.abspath(path or DEFAULT_PATH)
