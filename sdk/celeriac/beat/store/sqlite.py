"""``sqlite:///file.db``: the lease a row changed in ``BEGIN IMMEDIATE`` transactions, for the
beats of one host (a file on a network file system is warned about)."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from celeriac.transports.sqlite import forksafe

from .base import FENCED, RECORDED, STALE, LockStore, LockStoreError

log = logging.getLogger("celeriac.beat")

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS celeriac_beat_lease (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, token INTEGER NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS celeriac_beat_ticks (
    key TEXT NOT NULL, entry TEXT NOT NULL, tick INTEGER NOT NULL, PRIMARY KEY (key, entry)
);
"""


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` to a file path."""
    parts = urlsplit(url)
    path = unquote(parts.path).removeprefix("/")
    if parts.netloc or not path or path == ":memory:":
        raise LockStoreError(
            f"beat_lock_url {url!r}: name a file, as sqlite:///relative.db or "
            "sqlite:////absolute/path.db (beats in several processes share it)"
        )
    return os.path.abspath(path)


#: File systems that other hosts may mount too, where SQLite's locks cannot be relied on.
NETWORK_FILESYSTEMS = frozenset(
    ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs", "gpfs")
)


def filesystem_type(path: str, mounts: str | None = None) -> str:
    """The type of the file system ``path`` is on, from ``/proc/mounts`` ("" when unknown)."""
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
                mounts = f.read()
        except OSError:
            return ""
    path = os.path.realpath(path)
    best, found = -1, ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # /proc/mounts writes a space in a mount point as \040 (and so on, in octal)
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, found = len(point), fields[2]
    return found


def host_of(owner: str) -> str | None:
    """The host in an owner string made by a beat (``beat-<pid>@<host>#<id>``), else None."""
    if not owner.startswith("beat-") or "@" not in owner:
        return None
    return owner.partition("@")[2].rpartition("#")[0] or None


class SQLiteLockStore(LockStore):
    """``sqlite:///file.db``: a lease row per key, changed in BEGIN IMMEDIATE transactions.

    Processes of one host only: expiry reads this machine's clock, and SQLite's file locks do
    not hold over network file systems. A file on one (NFS, SMB, ...) is warned about when
    opened; a lease taken by a beat of another host is refused (:class:`LockStoreError`).
    """

    def __init__(self, url: str, key: str, lease: float) -> None:
        self.url = url
        self.key = key
        self.lease = lease
        path = sqlite_path(url)
        try:
            self.db = forksafe.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise LockStoreError(f"beat_lock_url {url!r}: cannot open {path}: {exc}") from exc
        self._lock = threading.Lock()
        kind = filesystem_type(os.path.dirname(path))
        if kind in NETWORK_FILESYSTEMS:
            log.warning(
                "beat_lock_url %s: %s is on a %s file system. SQLite elects among the beats of "
                "one host only: its locks do not hold across hosts, and beats on other hosts "
                "sharing this file would both lead. Give beats on several hosts a redis:// or "
                "zookeeper:// beat_lock_url.",
                url,
                path,
                kind,
            )

    def _check_host(self, holder: str, owner: str) -> None:
        """Refuse a file a beat of another host used: SQLite cannot elect across hosts."""
        theirs, ours = host_of(holder), host_of(owner)
        if theirs is not None and ours is not None and theirs != ours:
            raise LockStoreError(
                f"beat_lock_url {self.url!r}: the lease in this file was taken by a beat on host "
                f"{theirs!r}, and this beat runs on {ours!r}. SQLite elects among the beats of "
                "one host only (its locks do not hold across hosts, and expiry reads each "
                "host's clock); give beats on several hosts a shared redis:// or zookeeper:// "
                "beat_lock_url"
            )

    def _transaction(self, work: Any) -> Any:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return result

    def _lease(self) -> tuple[str, int, float] | None:
        row = self.db.execute(
            "SELECT owner, token, expires FROM celeriac_beat_lease WHERE key = ?", (self.key,)
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), float(row[2]))

    def acquire(self, owner: str) -> int | None:
        def work() -> int | None:
            now = time.time()
            lease = self._lease()
            if lease is None:
                self.db.execute(
                    "INSERT INTO celeriac_beat_lease VALUES (?, ?, 1, ?)",
                    (self.key, owner, now + self.lease),
                )
                return 1
            holder, token, expires = lease
            self._check_host(holder, owner)
            if holder == owner and expires > now:
                self.db.execute(
                    "UPDATE celeriac_beat_lease SET expires = ? WHERE key = ?",
                    (now + self.lease, self.key),
                )
                return token
            if expires > now:
                return None
            self.db.execute(
                "UPDATE celeriac_beat_lease SET owner = ?, token = ?, expires = ? WHERE key = ?",
                (owner, token + 1, now + self.lease, self.key),
            )
            return token + 1

        result: int | None = self._transaction(work)
        return result

    def leader(self) -> str | None:
        with self._lock:
            lease = self._lease()
        return lease[0] if lease is not None and lease[2] > time.time() else None

    def last_ticks(self) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute(
                "SELECT entry, tick FROM celeriac_beat_ticks WHERE key = ?", (self.key,)
            ).fetchall()
        return {str(name): int(tick) for name, tick in rows}

    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        def work() -> str:
            lease = self._lease()
            if lease is None or lease[:2] != (owner, token) or lease[2] <= time.time():
                return FENCED
            row = self.db.execute(
                "SELECT tick FROM celeriac_beat_ticks WHERE key = ? AND entry = ?",
                (self.key, entry),
            ).fetchone()
            if row is not None and int(row[0]) >= tick:
                return STALE
            self.db.execute(
                "INSERT INTO celeriac_beat_ticks VALUES (?, ?, ?) "
                "ON CONFLICT (key, entry) DO UPDATE SET tick = excluded.tick",
                (self.key, entry, tick),
            )
            return RECORDED

        result: str = self._transaction(work)
        return result

    def release(self, owner: str, token: int) -> None:
        def work() -> None:
            self.db.execute(
                "UPDATE celeriac_beat_lease SET expires = 0 WHERE key = ? AND owner = ? "
                "AND token = ?",
                (self.key, owner, token),
            )

        self._transaction(work)

    def close(self) -> None:
        self.db.close()
