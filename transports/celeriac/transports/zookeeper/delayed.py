"""Delayed items: ``<base>/.celeriac/delayed/<queue>/due-<ms>-<PPP>-<seq>``, moved when due.

Any consumer of the queue moves a due item into it, in one transaction (create the item, delete
the delayed node at the version read), so two consumers racing move it once.
"""

from __future__ import annotations

from kazoo.client import KazooClient, TransactionRequest
from kazoo.exceptions import NoNodeError

from celeriac.protocol.envelopes import zookeeper as envelope

from .client import batches, gather, retryable, try_multi
from .paths import Layout

__all__ = ["move_due"]


def move_due(client: KazooClient, layout: Layout, queue: str, names: list[str]) -> None:
    """Move the delayed items ``names`` (due ones) into ``queue``."""
    folder = layout.delayed(queue)
    reads = gather([client.get_async(f"{folder}/{name}") for name in names])
    moves: list[tuple[str, str, bytes, int]] = []  # (item prefix, delayed node, data, version)
    for name, read in zip(names, reads, strict=True):
        if isinstance(read, NoNodeError) or retryable(read):
            continue  # another consumer moved it, or the next fetch will
        if isinstance(read, Exception):
            raise read
        data, stat = read
        parsed = envelope.parse_delayed(name)
        assert parsed is not None  # callers pass parsed names only
        prefix = f"{layout.queue(queue)}/{envelope.entry_prefix(envelope.MAX_PRIORITY - parsed[1])}"
        moves.append((prefix, f"{folder}/{name}", data, stat.version))
    for run in batches(moves, size=lambda move: len(move[2])):

        def build(tx: TransactionRequest, run: list[tuple[str, str, bytes, int]] = run) -> None:
            _add_moves(tx, run)

        if not try_multi(client, build):
            # One by one: those another consumer moved first fail alone and change nothing.
            gather([_add_moves(client.transaction(), [move]).commit_async() for move in run])


def _add_moves(
    tx: TransactionRequest, moves: list[tuple[str, str, bytes, int]]
) -> TransactionRequest:
    for prefix, node, data, version in moves:
        tx.create(prefix, data, sequence=True)
        tx.delete(node, version=version)
    return tx
