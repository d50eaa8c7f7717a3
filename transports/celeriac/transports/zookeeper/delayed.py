"""Delayed items: ``<base>/.celeriac/delayed/<queue>/due-<ms>-<PPP>-<seq>``, moved when due.

Any consumer of the queue moves a due item into it, in one transaction (create the item, delete
the delayed node at the version read), so two consumers racing move it once.
"""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from celeriac.protocol.envelopes import zookeeper as envelope

from .client import gather
from .paths import Layout

__all__ = ["move_due"]


def move_due(client: KazooClient, layout: Layout, queue: str, names: list[str]) -> int:
    """Move the delayed items ``names`` (due ones) into ``queue``; return how many moved here."""
    folder = layout.delayed(queue)
    reads = gather([client.get_async(f"{folder}/{name}") for name in names])
    commits = []
    for name, read in zip(names, reads, strict=True):
        if isinstance(read, NoNodeError):
            continue  # another consumer moved it
        if isinstance(read, Exception):
            raise read
        data, stat = read
        parsed = envelope.parse_delayed(name)
        assert parsed is not None  # callers pass parsed names only
        priority = envelope.MAX_PRIORITY - parsed[1]
        tx = client.transaction()
        tx.create(f"{layout.queue(queue)}/{envelope.entry_prefix(priority)}", data, sequence=True)
        tx.delete(f"{folder}/{name}", version=stat.version)
        commits.append(tx.commit_async())
    # A failed transaction changed nothing: another consumer moved the item first.
    return sum(
        1
        for result in gather(commits)
        if isinstance(result, list) and not any(isinstance(r, Exception) for r in result)
    )
