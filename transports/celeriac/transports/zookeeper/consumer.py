"""The ZooKeeper consumer: items claimed by ephemeral nodes, woken by child watches.

A claim is the node ``<base>/.celeriac/claims/<queue>/<item>``, created EPHEMERAL by the consumer's
own session: when the consumer closes or its process dies, the session ends, the claims vanish and
the items are ready again. Each delivery is also counted in a persistent node (``counts.py``), so
an item whose consumers keep dying arrives counted (``Delivery.deliveries``).
"""

from __future__ import annotations

import heapq
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import zookeeper as envelope

from ..base import Consumer, Delivery, dead_letter_queue
from ..dead_letter import dead_letter_message
from ..errors import TransportError
from .claims import claim, strays
from .client import delete_all, gather, guarded
from .counts import count, orphans, sweep
from .delayed import move_due

if TYPE_CHECKING:
    from .transport import ZooKeeperTransport

__all__ = ["TRUNCATED_HEADER", "ZooKeeperConsumer"]

#: Header of a dead-lettered copy whose body was cut to fit a node: the body's original length.
TRUNCATED_HEADER = "x-celeriac-truncated-from"
#: Most delayed items one fetch moves into a queue (the rest move on the next fetch).
MOVE_BATCH = 200


@dataclass(frozen=True, slots=True)
class _Held:
    queue: str
    name: str
    claim: str
    data: bytes


class ZooKeeperConsumer(Consumer):
    """Claims the first unclaimed items of its queues in name order (priority, then sequence)."""

    def __init__(self, transport: ZooKeeperTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.layout = transport.layout
        self.where = transport.where
        for queue in self.queues:
            transport.ensure_queue(queue)
        # A session of its own: every claim it owns is this consumer's, and ending it gives back
        # everything at once.
        self.client: KazooClient = transport.open_session()
        self.held: dict[str, _Held] = {}
        wake = self._wake = threading.Event()
        # One callable for every watch, so kazoo keeps one watcher per node, not one per fetch.
        self._watch: Callable[[Any], None] = lambda _event: wake.set()
        self.client.add_listener(self._watch)  # a reconnect drops watches: look again
        self._transport = transport
        # Set when a claim's create went unanswered: it may exist, ours, held by no delivery.
        self._strays = False
        # Dropped without close(), a consumer still gives its items back at once.
        self._finalizer = weakref.finalize(self, _release, self.client, self.held)

    @guarded
    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        if not self._finalizer.alive:
            raise TransportError(f"{self.where}: consumer used after close()")
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            room = min(max_messages, self.prefetch - len(self.held))
            if room <= 0:
                return []
            self._wake.clear()  # before looking, so a change made after the look wakes us
            got, next_due = self._step(room)
            if got:
                return got
            now = time.monotonic()
            if end is not None and now >= end:
                return []
            waits = [w for w in (next_due, None if end is None else end - now) if w is not None]
            if not waits or min(waits) > 0:
                self._wake.wait(min(waits) if waits else None)

    def _step(self, room: int) -> tuple[list[Delivery], float | None]:
        """Move due delayed items, then claim up to ``room`` ready ones.

        Also returns how long to wait at most: until the next delayed item is due, or 0 when
        other consumers won the items this look found (look again at once).
        """
        if self._strays:
            self._drop_strays()
        ready, claimed, delayed, counted = self.client.retry(self._look)
        for queue, names in counted.items():
            stale = orphans(names, ready[queue])
            if stale:  # left by a holder that died between the two, or taken by Kombu
                sweep(self.client, self.layout, queue, stale)
        now_ms = int(time.time() * 1000)
        next_due: float | None = None
        for queue, names in delayed.items():
            due: list[str] = []
            for name in sorted(names):
                parsed = envelope.parse_delayed(name)
                if parsed is None:
                    continue
                if parsed[0] > now_ms or len(due) >= MOVE_BATCH:
                    wait = max(parsed[0] - now_ms, 0) / 1000
                    next_due = wait if next_due is None else min(next_due, wait)
                    break
                due.append(name)
            if due:
                move_due(self.client, self.layout, queue, due)
                next_due = 0.0
        # Item names sort as (node priority, sequence): fixed widths, so plain string order.
        candidates = heapq.nsmallest(
            room,
            (
                (name, queue)
                for queue, names in ready.items()
                for name in names
                if name.startswith(envelope.ENTRY_PREFIX) and name not in claimed[queue]
            ),
        )
        known = {(queue, name) for queue, names in counted.items() for name in names}
        got = self._claim([(queue, name) for name, queue in candidates], known)
        return got, (0.0 if candidates and not got else next_due)

    def _look(
        self,
    ) -> tuple[
        dict[str, list[str]], dict[str, set[str]], dict[str, list[str]], dict[str, list[str]]
    ]:
        """Children of each queue's count, item, claim and delayed nodes, in one pipelined
        round (counts first: see ``counts.orphans``)."""
        c, layout, watch = self.client, self.layout, self._watch
        calls = []
        for queue in self.queues:
            calls.append(c.get_children_async(layout.counts(queue)))
            calls.append(c.get_children_async(layout.queue(queue), watch=watch))
            calls.append(c.get_children_async(layout.claims(queue)))
            calls.append(c.get_children_async(layout.delayed(queue), watch=watch))
        results = gather(calls)
        ready: dict[str, list[str]] = {}
        claimed: dict[str, set[str]] = {}
        delayed: dict[str, list[str]] = {}
        counted: dict[str, list[str]] = {}
        for i, queue in enumerate(self.queues):
            got = results[4 * i : 4 * i + 4]
            for result in got:
                if isinstance(result, NoNodeError):  # deleted by hand, or the data was wiped
                    self._transport.ensure_queue(queue, again=True)
                elif isinstance(result, Exception):
                    raise result
            counted[queue], ready[queue], claims, delayed[queue] = (
                [] if isinstance(r, Exception) else r for r in got
            )
            claimed[queue] = set(claims)
        return ready, claimed, delayed, counted

    def _claim(self, items: list[tuple[str, str]], known: set[tuple[str, str]]) -> list[Delivery]:
        c, layout = self.client, self.layout
        # Counted as claimed (one multi), before anything runs: a holder that dies still counts.
        won, unsure, counted = claim(c, layout, items, known)
        self._strays = self._strays or unsure
        reads = gather([c.get_async(f"{layout.queue(q)}/{n}") for q, n, _ in won])
        read: list[tuple[str, str, str, bytes]] = []
        lost: list[str] = []
        for (queue, name, claim_path), result in zip(won, reads, strict=True):
            if isinstance(result, Exception):
                # Acked by its holder between our look and our claim (its count too, if we
                # made one: the item is gone for good).
                lost += [claim_path, layout.count(queue, name)]
            else:
                read.append((queue, name, claim_path, result[0]))
        delete_all(c, lost)
        # Those claimed one by one (another consumer raced us for some) are counted now.
        uncounted = [(q, n) for q, n, claim_path, _ in read if claim_path not in counted]
        for (queue, name), deliveries in zip(
            uncounted, count(c, layout, uncounted, known), strict=True
        ):
            counted[f"{layout.claims(queue)}/{name}"] = deliveries
        out: list[Delivery] = []
        for queue, name, claim_path, data in read:
            path = f"{layout.queue(queue)}/{name}"
            self.held[path] = _Held(queue, name, claim_path, data)
            out.append(_delivery(queue, path, data, counted[claim_path]))
        return out

    def _drop_strays(self) -> None:
        for queue in self.queues:
            held = {h.name for h in self.held.values() if h.queue == queue}
            delete_all(self.client, strays(self.client, self.layout, queue, held))
        self._strays = False

    def _settle(self, delivery: Delivery) -> _Held | None:
        return self.held.pop(delivery.tag, None) if isinstance(delivery.tag, str) else None

    @guarded
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        paths: list[str] = []
        for delivery in deliveries:
            held = self._settle(delivery)
            if held is not None:
                # The item first: a lone claim or count is harmless (a count is swept).
                paths += [delivery.tag, held.claim, self.layout.count(held.queue, held.name)]
        # One multi while every node is there; a lost session's claims are gone, which is fine.
        delete_all(self.client, paths)

    @guarded
    def reject(self, delivery: Delivery, reason: str) -> None:
        held = self._settle(delivery)
        if held is None:
            return
        dead = dead_letter_queue(held.queue)
        self._transport.ensure_queue(dead)
        copy = dead_letter_message(delivery, reason)
        data = _dead_letter_data(copy, dead, self._transport.max_message_bytes)
        priority = envelope.message_priority(copy.properties)
        item = f"{self.layout.queue(dead)}/{envelope.entry_prefix(priority)}"

        def move(with_claim: bool) -> bool:
            tx = self.client.transaction()
            tx.create(item, data, sequence=True)
            tx.delete(delivery.tag)
            if with_claim:
                tx.delete(held.claim)
            return not any(isinstance(r, Exception) for r in tx.commit())

        # Without our claim (a lost session) the item is still ours to move; gone, it was settled.
        if not self.client.retry(move, True):
            self.client.retry(move, False)
        sweep(self.client, self.layout, held.queue, [held.name])

    @guarded
    def requeue(self, delivery: Delivery) -> None:
        held = self._settle(delivery)
        if held is None:
            return

        def give_back() -> None:
            tx = self.client.transaction()
            # Same name, so the item keeps its place (and its count, which the next delivery
            # bumps); the flag tells the next consumer.
            tx.set_data(delivery.tag, envelope.mark_redelivered(held.data))
            tx.delete(held.claim)
            tx.commit()  # fails only when the claim is gone: the item is back already

        self.client.retry(give_back)
        self._wake.set()

    @guarded
    def close(self) -> None:
        self._finalizer()


def _release(client: KazooClient, held: dict[str, _Held]) -> None:
    """End the session (close() or collection): the server deletes its claims as it closes it,
    so every held item is ready again when this returns."""
    held.clear()
    try:
        client.stop()
    finally:
        client.close()


def _dead_letter_data(copy: WireMessage, dead: str, limit: int) -> bytes:
    """The dead-letter envelope, its body cut to fit the node limit when it does not.

    Only a huge unreadable item can outgrow the limit (its bytes are wrapped in Base64): losing
    its tail beats leaving it in the queue, to fail again forever. The header says how long it was.
    """
    data = envelope.pack_wire(copy, routing_key=dead)
    body = copy.body
    while len(data) > limit and body:
        cut = (len(data) - limit) * 3 // 4 + 64  # Base64: 4 characters per 3 bytes
        body = body[: max(len(body) - cut, 0)]
        headers = {**copy.headers, TRUNCATED_HEADER: len(copy.body)}
        trimmed = WireMessage(
            body, copy.content_type, copy.content_encoding, headers, copy.properties
        )
        data = envelope.pack_wire(trimmed, routing_key=dead)
    return data


def _delivery(queue: str, path: str, data: bytes, deliveries: int) -> Delivery:
    try:
        wire, marked = envelope.unpack_consumed(data)
    except ProtocolError as exc:
        return Delivery(queue, None, path, raw=data, error=exc, deliveries=deliveries)
    # An item given back by a dead session carries no flag: its count says it came back.
    return Delivery(queue, wire, path, marked or deliveries > 1, deliveries=deliveries)
