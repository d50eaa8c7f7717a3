"""``zookeeper://``: an ephemeral sequential node per beat (the lowest leads, its sequence
number the token) and each record a transaction that checks the node still exists."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from .base import FENCED, RECORDED, STALE, LockStore, LockStoreError


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
