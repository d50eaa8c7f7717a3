"""Raw access to the contract suite's ZooKeeper: bytes put where a queue's items live."""

from __future__ import annotations

from urllib.parse import urlsplit

from kazoo.client import KazooClient


def inject(url: str, queue: str, raw: bytes) -> None:
    """Create a queue item holding ``raw`` (not an envelope), named as kazoo's Queue names one."""
    parts = urlsplit(url)
    base = parts.path.rstrip("/")
    client = KazooClient(hosts=parts.netloc.rpartition("@")[2])
    client.start(timeout=10)
    try:
        client.create(f"{base}/{queue}/entry-009-", raw, sequence=True, makepath=True)
    finally:
        client.stop()
        client.close()
