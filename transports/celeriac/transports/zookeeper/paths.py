"""Where things live in ZooKeeper (SPEC.md §6.6): Kombu's queue nodes, Celeriac's own beside them.

Queue nodes hold nothing but kazoo-style items, so Kombu's consumers and its size (the node's
child count) keep working; claims, delivery counts, delayed items and broadcasts live under
``<base>/.celeriac``.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = ["Layout", "check_name"]

#: Celeriac's bookkeeping root, under the URL's base path (no queue can be named so: see check).
INTERNAL = ".celeriac"


def check_name(kind: str, name: str) -> str:
    """``name`` if it can be one znode's name; ValueError naming the rule otherwise."""
    if not name or "/" in name or name in (".", "..", INTERNAL) or "\x00" in name:
        raise ValueError(
            f"{kind} name {name!r} cannot be a ZooKeeper node name: it must be non-empty, "
            f"hold no '/' or NUL, and not be '.', '..' or {INTERNAL!r}"
        )
    return name


class Layout:
    """The paths of one ``zookeeper://host:port/<base>`` URL (Kombu's virtual host)."""

    def __init__(self, url: str) -> None:
        path = unquote(urlsplit(url).path).strip("/")
        self.base = f"/{path}" if path else ""
        self.internal = f"{self.base}/{INTERNAL}"

    @property
    def root(self) -> str:
        return self.base or "/"

    def queue(self, queue: str) -> str:
        """The queue node, whose children are the ready items ``entry-<PPP>-<seq>``."""
        return f"{self.base}/{check_name('queue', queue)}"

    def claims(self, queue: str) -> str:
        """The node whose ephemeral children name the items consumers hold."""
        return f"{self.internal}/claims/{check_name('queue', queue)}"

    def counts(self, queue: str) -> str:
        """The node whose persistent children count the deliveries of the queue's items."""
        return f"{self.internal}/deliveries/{check_name('queue', queue)}"

    def count(self, queue: str, name: str) -> str:
        """The node whose version counts the deliveries of item ``name`` of ``queue``."""
        return f"{self.counts(queue)}/{name}"

    def delayed(self, queue: str) -> str:
        """The node whose children are items not due yet, named by due time."""
        return f"{self.internal}/delayed/{check_name('queue', queue)}"

    def structure(self, queue: str) -> tuple[str, ...]:
        """Every node a queue needs."""
        return self.queue(queue), self.claims(queue), self.counts(queue), self.delayed(queue)

    def broadcast(self, exchange: str) -> str:
        """The node whose sequential children are the messages broadcast to ``exchange``."""
        return f"{self.internal}/broadcast/{check_name('exchange', exchange)}"
