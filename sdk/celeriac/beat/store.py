"""Lock stores: where beats elect one leader and keep each entry's last tick, behind fencing.

A store, chosen by URL (``beat_lock_url``), offers three calls that beats use:

* :meth:`LockStore.acquire` takes the lease or renews it; it answers the *fencing token* while
  the caller leads, None otherwise. A new leader always gets a larger token than any before it.
* :meth:`LockStore.record` sets an entry's last tick, atomically with a check that the caller
  still holds the lease under that token, and that the tick is later than the stored one. A
  leader that lost its lease (paused, cut off) is refused, so it never sends.
* :meth:`LockStore.last_ticks` reads every entry's last tick.

Ticks are integer microseconds since the Unix epoch (exact, comparable everywhere).

=================  ===========================================================================
``redis://``       ``SET`` of ``"<token> <owner>"`` with ``PX`` (the lease), the token from
                   ``INCR`` on a counter; renewals and records are Lua scripts that compare
                   the lock's value first, so the check and the write are one step.
``sqlite:///f.db`` A lease row (owner, token, expiry) and a tick table, each change in a
                   ``BEGIN IMMEDIATE`` transaction (processes of one host: a lease taken
                   by another host's beat is refused).
``zookeeper://``   An ephemeral sequential node per beat; the lowest leads and its sequence
                   number is the token; a record is a transaction that checks the node still
                   exists (its session is alive) and sets the tick with a version check.
``memory://name``  In this process (beats in threads, tests).
=================  ===========================================================================
"""

from __future__ import annotations

import abc
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from celeriac.transports.sqlite import forksafe

__all__ = ["FENCED", "RECORDED", "STALE", "LockStore", "LockStoreError", "open_lock_store"]

log = logging.getLogger("celeriac.beat")

#: :meth:`LockStore.record` answers: written; refused (not the leader under that token);
#: refused (the stored tick is already as late).
RECORDED, FENCED, STALE = "recorded", "fenced", "stale"


class LockStoreError(RuntimeError):
    """A lock store URL that cannot be used."""


class LockStore(abc.ABC):
    """Leader election with fencing tokens, and the last tick of each schedule entry."""

    url: str

    @abc.abstractmethod
    def acquire(self, owner: str) -> int | None:
        """Take or renew the lease for ``owner``: the fencing token while it leads, else None."""

    @abc.abstractmethod
    def leader(self) -> str | None:
        """Who holds the lease now (its owner string), if anyone."""

    @abc.abstractmethod
    def last_ticks(self) -> dict[str, int]:
        """Each entry's last tick (microseconds since the epoch)."""

    @abc.abstractmethod
    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        """Set ``entry``'s last tick to ``tick`` if ``owner`` leads under ``token`` and the
        stored tick is earlier: :data:`RECORDED`, :data:`FENCED` or :data:`STALE`."""

    @abc.abstractmethod
    def release(self, owner: str, token: int) -> None:
        """Give the lease up (so another beat takes over at once)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close connections."""


# -- Redis ----------------------------------------------------------------------------------------
_REDIS_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local space = string.find(current, ' ', 1, true)
  if string.sub(current, space + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(current, 1, space - 1))
  end
  return -1
end
local token = redis.call('INCR', KEYS[2])
if redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'NX', 'PX', ARGV[2]) then
  return token
end
return -1
"""
_REDIS_RECORD = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] .. ' ' .. ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2])) ~= tonumber(ARGV[2]) then return 0 end
local last = redis.call('HGET', KEYS[3], ARGV[3])
if last and tonumber(last) >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
_REDIS_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[2] .. ' ' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLockStore(LockStore):
    """``redis://``: keys ``<key>:lock``, ``<key>:fence`` and the hash ``<key>:ticks``."""

    def __init__(self, url: str, key: str, lease: float) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - an install without the extra
            raise LockStoreError(
                f"beat_lock_url {url!r} needs the redis package: pip install 'celeriac[redis]'"
            ) from exc
        self.url = url
        self.lease_ms = max(1, round(lease * 1000))
        self.client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.keys = (f"{key}:lock", f"{key}:fence", f"{key}:ticks")
        self._acquire = self.client.register_script(_REDIS_ACQUIRE)
        self._record = self.client.register_script(_REDIS_RECORD)
        self._release = self.client.register_script(_REDIS_RELEASE)

    def acquire(self, owner: str) -> int | None:
        token = int(self._acquire(keys=self.keys[:2], args=[owner, self.lease_ms]))
        return token if token > 0 else None

    def leader(self) -> str | None:
        value = self.client.get(self.keys[0])
        return None if value is None else value.decode().partition(" ")[2]

    def last_ticks(self) -> dict[str, int]:
        raw = self.client.hgetall(self.keys[2])
        return {name.decode(): int(value) for name, value in raw.items()}

    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        done = int(self._record(keys=self.keys, args=[owner, token, entry, tick]))
        return RECORDED if done == 1 else STALE if done == -1 else FENCED

    def release(self, owner: str, token: int) -> None:
        self._release(keys=self.keys[:1], args=[owner, token])

    def close(self) -> None:
        self.client.close()


# -- SQLite ---------------------------------------------------------------------------------------
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


# -- ZooKeeper ------------------------------------------------------------------------------------
class ZooKeeperLockStore(LockStore):
    """``zookeeper://host:port[/base]``: election nodes under ``<base>/<key>/election``, ticks
    under ``<base>/<key>/ticks``. The lease is the ZooKeeper session (timeout ``lease``,
    which the server may raise to its minimum, twice its tickTime)."""

    def __init__(self, url: str, key: str, lease: float) -> None:
        try:
            from kazoo.client import KazooClient
        except ImportError as exc:  # pragma: no cover - an install without the extra
            raise LockStoreError(
                f"beat_lock_url {url!r} needs the kazoo package: pip install 'celeriac[zookeeper]'"
            ) from exc
        self.url = url
        parts = urlsplit(url)
        hosts = parts.netloc.rpartition("@")[2] or "127.0.0.1:2181"
        base = unquote(parts.path).rstrip("/")
        self.root = f"{base}/celeriac-beat/{key.replace('/', '_')}"
        self.client: Any = KazooClient(hosts=hosts, timeout=max(lease, 2.0))
        try:
            self.client.start(timeout=10)
        except Exception as exc:
            self.client.close()
            raise LockStoreError(
                f"beat_lock_url {url!r}: no ZooKeeper server answered at {hosts}: {exc}"
            ) from exc
        self.client.ensure_path(f"{self.root}/election")
        self.client.ensure_path(f"{self.root}/ticks")
        self.node: str | None = None

    @staticmethod
    def _sequence(name: str) -> int:
        return int(name.rpartition("-")[2])

    def acquire(self, owner: str) -> int | None:
        if self.node is None or self.client.exists(self.node) is None:
            self.node = self.client.create(
                f"{self.root}/election/n-", owner.encode(), ephemeral=True, sequence=True
            )
        children = sorted(self.client.get_children(f"{self.root}/election"), key=self._sequence)
        mine = self.node.rpartition("/")[2]
        if children and children[0] == mine:
            return self._sequence(mine)
        return None

    def leader(self) -> str | None:
        election = f"{self.root}/election"
        for name in sorted(self.client.get_children(election), key=self._sequence):
            try:
                data, _ = self.client.get(f"{election}/{name}")
            except Exception:  # gone between the listing and the read
                continue
            return bytes(data).decode()
        return None

    def last_ticks(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for name in self.client.get_children(f"{self.root}/ticks"):
            try:
                data, _ = self.client.get(f"{self.root}/ticks/{name}")
            except Exception:
                continue
            found[unquote(name)] = int(bytes(data).decode())
        return found

    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        from urllib.parse import quote

        node = self.node
        if node is None or self._sequence(node) != token:
            return FENCED
        path = f"{self.root}/ticks/{quote(entry, safe='')}"
        stat = self.client.exists(path)
        if stat is not None:
            data, stat = self.client.get(path)
            if int(bytes(data).decode()) >= tick:
                return STALE
        transaction = self.client.transaction()
        transaction.check(node, 0)  # our election node, never changed: our session lives
        if stat is None:
            transaction.create(path, str(tick).encode())
        else:
            transaction.set_data(path, str(tick).encode(), version=stat.version)
        results = transaction.commit()
        if all(not isinstance(r, Exception) for r in results):
            return RECORDED
        return FENCED

    def release(self, owner: str, token: int) -> None:
        if self.node is not None:
            try:
                self.client.delete(self.node)
            except Exception:  # already gone with its session
                pass
            self.node = None

    def close(self) -> None:
        self.client.stop()
        self.client.close()


# -- memory ---------------------------------------------------------------------------------------
@dataclass
class _Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: str | None = None
    token: int = 0
    expires: float = 0.0
    ticks: dict[str, int] = field(default_factory=dict)


_MEMORY: dict[str, _Shared] = {}
_MEMORY_LOCK = threading.Lock()


class MemoryLockStore(LockStore):
    """``memory://name``: shared by the beats of this process that name the same store."""

    def __init__(self, url: str, key: str, lease: float) -> None:
        self.url = url
        self.lease = lease
        with _MEMORY_LOCK:
            self.shared = _MEMORY.setdefault(f"{url}#{key}", _Shared())

    def acquire(self, owner: str) -> int | None:
        s = self.shared
        with s.lock:
            now = time.monotonic()
            if s.owner == owner and s.expires > now:
                s.expires = now + self.lease
                return s.token
            if s.owner is not None and s.expires > now:
                return None
            s.owner, s.token, s.expires = owner, s.token + 1, now + self.lease
            return s.token

    def leader(self) -> str | None:
        with self.shared.lock:
            alive = self.shared.expires > time.monotonic()
            return self.shared.owner if alive else None

    def last_ticks(self) -> dict[str, int]:
        with self.shared.lock:
            return dict(self.shared.ticks)

    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        s = self.shared
        with s.lock:
            if (s.owner, s.token) != (owner, token) or s.expires <= time.monotonic():
                return FENCED
            if s.ticks.get(entry, -(2**63)) >= tick:
                return STALE
            s.ticks[entry] = tick
            return RECORDED

    def release(self, owner: str, token: int) -> None:
        s = self.shared
        with s.lock:
            if (s.owner, s.token) == (owner, token):
                s.expires = 0.0

    def close(self) -> None:
        """Nothing to close: the state stays for the other beats of this process."""


_KINDS: dict[str, Callable[[str, str, float], LockStore]] = {
    "redis": RedisLockStore,
    "rediss": RedisLockStore,
    "sqlite": SQLiteLockStore,
    "zookeeper": ZooKeeperLockStore,
    "memory": MemoryLockStore,
}
LOCK_SCHEMES = frozenset(_KINDS)


def open_lock_store(url: str, key: str, lease: float = 3.0) -> LockStore:
    """The lock store ``url`` names (redis://, sqlite:///, zookeeper://, memory://)."""
    scheme = url.partition("://")[0].lower()
    kind = _KINDS.get(scheme)
    if kind is None:
        raise LockStoreError(
            f"beat_lock_url {url!r}: beats cannot elect a leader on {scheme}://; set "
            "beat_lock_url to a redis://, sqlite:///, zookeeper:// or memory:// URL"
        )
    return kind(url, key, lease)
