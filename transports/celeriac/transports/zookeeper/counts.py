"""Delivery counts: a PERSISTENT node ``<base>/.celeriac/deliveries/<queue>/<item>`` per item
that was ever delivered; its version counts the deliveries.

A claim is ephemeral, so when the process holding an item dies nothing else would remember that
the item was delivered, and a task that kills its worker would run forever. The count node
outlives the session: the first delivery creates it (version 0: one delivery), each later one
sets its data (version + 1). It goes with its item (ack, reject, purge); one left behind (its
holder died between the two, or a Kombu consumer took the item) is swept once its item is gone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from .client import batches, delete_all, gather, retryable
from .paths import Layout

__all__ = ["count", "deliveries_of", "orphans", "sweep"]


def count(
    client: KazooClient,
    layout: Layout,
    items: Sequence[tuple[str, str]],
    known: Collection[tuple[str, str]],
) -> list[int]:
    """Count one more delivery of each item ``(queue, name)``; return each one's deliveries,
    this one included. ``known``: the items whose count node a recent look found.

    A lost reply may count a delivery twice (the call is made again): that stops a message one
    delivery early, never lets it run one more time than allowed.
    """
    paths = [layout.count(queue, name) for queue, name in items]
    counts = [0] * len(items)
    again: list[int] = []
    for run in batches(range(len(items))):
        tx = client.transaction()
        for i in run:
            if items[i] in known:
                tx.set_data(paths[i], b"")
            else:
                tx.create(paths[i], b"")
        try:
            results = tx.commit()
        except KazooException as exc:
            if not retryable(exc):
                raise
            again += run
            continue
        if any(isinstance(r, Exception) for r in results):
            again += run  # the look was out of date for some: one by one
            continue
        for i, result in zip(run, results, strict=True):
            counts[i] = deliveries_of(result)
    # One by one, pipelined: set where the look found a node, else create; then the others.
    tries = gather(
        [
            client.set_async(paths[i], b"")
            if items[i] in known
            else client.create_async(paths[i], b"")
            for i in again
        ]
    )
    for i, result in zip(again, tries, strict=True):
        if isinstance(result, Exception):
            counts[i] = client.retry(_count_one, client, paths[i])
        else:
            counts[i] = deliveries_of(result)
    return counts


def deliveries_of(result: object) -> int:
    """The deliveries a count node's create (the path: the first) or set (its stat) says."""
    return result.version + 1 if isinstance(result, ZnodeStat) else 1


def _count_one(client: KazooClient, path: str) -> int:
    while True:
        try:
            stat: ZnodeStat = client.set(path, b"")
            return int(stat.version) + 1
        except NoNodeError:
            pass
        try:
            client.create(path, b"")
            return 1
        except NodeExistsError:
            continue  # created meanwhile: set it


def orphans(counted: Collection[str], items: Collection[str]) -> list[str]:
    """The count nodes (names) among ``counted`` whose item is not among ``items``.

    ``counted`` must be listed before ``items``: a count node is made only for an item that
    exists, and an item never comes back once deleted (its sequence number is not reused), so a
    node listed before an item listing that lacks its item is an orphan.
    """
    present = set(items)
    return [name for name in counted if name not in present]


def sweep(client: KazooClient, layout: Layout, queue: str, names: Collection[str]) -> None:
    """Delete the count nodes of ``queue``'s items ``names`` (missing ones are fine)."""
    delete_all(client, [layout.count(queue, name) for name in names])
