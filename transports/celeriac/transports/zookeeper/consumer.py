"""The ZooKeeper consumer: items claimed by ephemeral nodes, woken by child watches.

A claim is the node ``<base>/.celeriac/claims/<queue>/<item>``, created EPHEMERAL by the consumer's
session: when the process dies its session ends, the claims vanish and the items are ready again.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import zookeeper as envelope

from ..base import Consumer, Delivery, dead_letter_queue
from ..dead_letter import dead_letter_message
from ..errors import TransportError
from .client import gather, guarded, retryable
from .delayed import move_due

if TYPE_CHECKING:
    from .transport import ZooKeeperTransport

__all__ = ["ZooKeeperConsumer"]

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
        self.client: KazooClient = transport.client_or_raise()
        self.layout = transport.layout
        self.where = transport.where
        for queue in self.queues:
            transport.ensure_queue(queue)
        self.held: dict[str, _Held] = {}
        wake = self._wake = threading.Event()
        # One callable for every watch, so kazoo keeps one watcher per node, not one per fetch.
        self._watch: Callable[[Any], None] = lambda _event: wake.set()
        self.client.add_listener(self._watch)  # a reconnect drops watches: look again
        self._transport = transport
        # Dropped without close(), a consumer still gives its items back at once.
        self._finalizer = weakref.finalize(self, _release, self.client, self._watch, self.held)

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
        ready, claimed, delayed = self.client.retry(self._look)
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
        candidates = sorted(
            (parsed, queue, name)
            for queue, names in ready.items()
            for name in names
            if name not in claimed[queue] and (parsed := envelope.parse_entry(name)) is not None
        )[:room]
        got = self._claim([(queue, name) for _, queue, name in candidates])
        return got, (0.0 if candidates and not got else next_due)

    def _look(self) -> tuple[dict[str, list[str]], dict[str, set[str]], dict[str, list[str]]]:
        """Children of each queue's item, claim and delayed nodes, in one pipelined round."""
        c, layout, watch = self.client, self.layout, self._watch
        calls = []
        for queue in self.queues:
            calls.append(c.get_children_async(layout.queue(queue), watch=watch))
            calls.append(c.get_children_async(layout.claims(queue)))
            calls.append(c.get_children_async(layout.delayed(queue), watch=watch))
        results = gather(calls)
        ready: dict[str, list[str]] = {}
        claimed: dict[str, set[str]] = {}
        delayed: dict[str, list[str]] = {}
        for i, queue in enumerate(self.queues):
            got = results[3 * i : 3 * i + 3]
            for result in got:
                if isinstance(result, NoNodeError):  # deleted by hand, or the data was wiped
                    self._transport.ensure_queue(queue, again=True)
                elif isinstance(result, Exception):
                    raise result
            ready[queue], claimed[queue], delayed[queue] = (
                [] if isinstance(r, Exception) else r for r in got
            )
            claimed[queue] = set(claimed[queue])
        return ready, claimed, delayed

    def _claim(self, items: list[tuple[str, str]]) -> list[Delivery]:
        c, layout = self.client, self.layout
        claims = [f"{layout.claims(queue)}/{name}" for queue, name in items]
        results = gather([c.create_async(path, b"", ephemeral=True) for path in claims])
        won: list[tuple[str, str, str]] = []
        for (queue, name), claim, result in zip(items, claims, results, strict=True):
            if isinstance(result, NodeExistsError | NoNodeError):
                continue  # another consumer holds it (or the claims node is being recreated)
            if retryable(result) and not self._owns(claim):
                continue
            if isinstance(result, Exception) and not retryable(result):
                raise result
            won.append((queue, name, claim))
        reads = gather([c.get_async(f"{layout.queue(q)}/{n}") for q, n, _ in won])
        out: list[Delivery] = []
        lost: list[str] = []
        for (queue, name, claim), read in zip(won, reads, strict=True):
            if isinstance(read, Exception):
                lost.append(claim)  # acked by its holder between our look and our claim
                continue
            data: bytes = read[0]
            path = f"{layout.queue(queue)}/{name}"
            self.held[path] = _Held(queue, name, claim, data)
            out.append(_delivery(queue, path, data))
        gather([c.delete_async(claim) for claim in lost])
        return out

    def _owns(self, claim: str) -> bool:
        """Whether a claim whose create got no answer was made, by this session."""
        stat = self.client.retry(self.client.exists, claim)
        session = self.client.client_id
        return stat is not None and session is not None and stat.ephemeralOwner == session[0]

    def _settle(self, delivery: Delivery) -> _Held | None:
        return self.held.pop(delivery.tag, None) if isinstance(delivery.tag, str) else None

    @guarded
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        paths: list[str] = []
        for delivery in deliveries:
            held = self._settle(delivery)
            if held is not None:
                paths += [delivery.tag, held.claim]  # the item first: a lone claim is harmless
        self._delete(paths)

    def _delete(self, paths: list[str]) -> None:
        """Delete nodes, pipelined; gone ones (a lost session's claims) are fine."""
        results = gather([self.client.delete_async(path) for path in paths])
        for path, result in zip(paths, results, strict=True):
            if retryable(result):
                self.client.retry(_delete_quietly, self.client, path)
            elif isinstance(result, Exception) and not isinstance(result, NoNodeError):
                raise result

    @guarded
    def reject(self, delivery: Delivery, reason: str) -> None:
        held = self._settle(delivery)
        if held is None:
            return
        dead = dead_letter_queue(held.queue)
        self._transport.ensure_queue(dead)
        copy = dead_letter_message(delivery, reason)
        data = envelope.pack_wire(copy, routing_key=dead)
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

    @guarded
    def requeue(self, delivery: Delivery) -> None:
        held = self._settle(delivery)
        if held is None:
            return

        def give_back() -> None:
            tx = self.client.transaction()
            # Same name, so the item keeps its place; the flag tells the next consumer.
            tx.set_data(delivery.tag, envelope.mark_redelivered(held.data))
            tx.delete(held.claim)
            tx.commit()  # fails only when the claim is gone: the item is back already

        self.client.retry(give_back)
        self._wake.set()

    @guarded
    def close(self) -> None:
        self._finalizer()


def _delete_quietly(client: KazooClient, path: str) -> None:
    try:
        client.delete(path)
    except NoNodeError:
        pass


def _release(client: KazooClient, listener: Callable[[Any], None], held: dict[str, _Held]) -> None:
    """Give back every held item (close() or collection): its claim goes, the item stays."""
    client.remove_listener(listener)
    claims = [h.claim for h in held.values()]
    held.clear()
    results = gather([client.delete_async(claim) for claim in claims])
    for claim, result in zip(claims, results, strict=True):
        if retryable(result):
            try:  # the session may outlive this disconnection: the claim must not
                client.retry(_delete_quietly, client, claim)
            except KazooException:
                pass  # closed client, or broker down past the deadline: the session ends anyway


def _delivery(queue: str, path: str, data: bytes) -> Delivery:
    try:
        wire, info = envelope.unpack_wire(data)
    except ProtocolError as exc:
        return Delivery(queue, None, path, raw=data, error=exc)
    return Delivery(queue, wire, path, info.redelivered)
