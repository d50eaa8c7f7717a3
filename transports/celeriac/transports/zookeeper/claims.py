"""Claims: an EPHEMERAL node ``<base>/.celeriac/claims/<queue>/<item>`` per held item.

The claim lives as long as the session that made it, so a dead consumer's items come back by
themselves; creating it fails when another consumer holds the item, so no item is held twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError

from .client import batches, gather, retryable
from .counts import deliveries_of
from .paths import Layout

__all__ = ["claim", "owned", "strays"]


def claim(
    client: KazooClient,
    layout: Layout,
    items: Sequence[tuple[str, str]],
    known: Collection[tuple[str, str]] | None = None,
) -> tuple[list[tuple[str, str, str]], bool, dict[str, int]]:
    """Claim the items ``(queue, name)`` that no one holds; return ``(queue, name, claim)`` of
    each, whether a lost reply may have left a claim of ours that is not among them, and the
    deliveries counted.

    With ``known`` (the items whose count node a recent look found), the multi that claims a
    run also counts its deliveries (``counts.py``), at no extra write: the third value maps the
    claim paths counted so to their deliveries. Items claimed one by one are not counted here.
    """
    wanted = [(queue, name, f"{layout.claims(queue)}/{name}") for queue, name in items]
    won: list[tuple[str, str, str]] = []
    counted: dict[str, int] = {}
    unsure = False
    for run in batches(wanted):
        tx = client.transaction()
        for _, _, path in run:
            tx.create(path, b"", ephemeral=True)
        if known is not None:
            for queue, name, _ in run:
                if (queue, name) in known:
                    tx.set_data(layout.count(queue, name), b"")
                else:
                    tx.create(layout.count(queue, name), b"")
        try:
            results = tx.commit()
        except KazooException as exc:
            if not retryable(exc):
                raise
            results = None  # the reply was lost: one by one, and find out what was done
        if results is not None and not any(isinstance(r, Exception) for r in results):
            won += run  # the usual case: nobody else wanted these
            for (_, _, path), result in zip(run, results[len(run) :], strict=False):
                counted[path] = deliveries_of(result)
            continue
        # Some were taken (or the reply was lost): one by one, and keep what is ours.
        results = gather([client.create_async(path, b"", ephemeral=True) for _, _, path in run])
        doubtful = [item for item, r in zip(run, results, strict=True) if _unsure(r)]
        unsure = unsure or any(retryable(r) for r in results)
        mine = set(owned(client, [path for _, _, path in doubtful]))
        won += [
            item
            for item, result in zip(run, results, strict=True)
            if not isinstance(result, Exception) or item[2] in mine
        ]
    return won, unsure, counted


def _unsure(result: object) -> bool:
    # Taken by someone, perhaps ourselves in a multi whose reply was lost.
    return isinstance(result, NodeExistsError) or retryable(result)


def owned(client: KazooClient, claims: Sequence[str]) -> list[str]:
    """The claims among ``claims`` that exist and belong to this client's session."""
    if not claims:
        return []
    stats = [
        client.retry(client.exists, path) if retryable(stat) else stat
        for path, stat in zip(claims, gather([client.exists_async(p) for p in claims]), strict=True)
    ]
    session = client.client_id
    return [
        path
        for path, stat in zip(claims, stats, strict=True)
        if session is not None
        and stat is not None
        and not isinstance(stat, Exception)
        and stat.ephemeralOwner == session[0]
    ]


def strays(client: KazooClient, layout: Layout, queue: str, held: set[str]) -> list[str]:
    """Claims of ``queue`` this session owns but does not know it holds (``held``: item names).

    A claim whose create got no answer may exist all the same; while the session lives, nobody
    else would ever get its item.
    """
    folder = layout.claims(queue)
    names = client.retry(client.get_children, folder)
    return owned(client, [f"{folder}/{name}" for name in names if name not in held])
