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

Each store kind lives in a module of this package (``redis``, ``sqlite``, ``zookeeper``,
``memory``) behind :class:`LockStore` (``base``); import them from here.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import FENCED, RECORDED, STALE, LockStore, LockStoreError
from .memory import MemoryLockStore
from .redis import RedisLockStore
from .sqlite import NETWORK_FILESYSTEMS as NETWORK_FILESYSTEMS
from .sqlite import SQLiteLockStore
from .sqlite import filesystem_type as filesystem_type
from .sqlite import host_of as host_of
from .sqlite import sqlite_path as sqlite_path
from .zookeeper import ZooKeeperLockStore

__all__ = ["FENCED", "RECORDED", "STALE", "LockStore", "LockStoreError", "open_lock_store"]

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
