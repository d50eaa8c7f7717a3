"""The Redis consumer: one Lua script per batch, liveness renewed by fetch (SPEC.md §6.3)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, Delivery, dead_letter_queue
from ..dead_letter import dead_letter_message
from .keys import Keys
from .restore import mark_redelivered

if TYPE_CHECKING:
    from .transport import RedisTransport

__all__ = ["RedisConsumer"]

log = logging.getLogger("celeriac.transports.redis")

_unpack = json_envelope.unpack_consumed
#: Longest idle wait between two fetch scripts: Kombu producers do not announce their pushes.
_POLL = 0.1
#: Envelope bytes one fetch script aims to move. The script copies each envelope into Kombu's
#: ``unacked`` record and returns it; past a few MiB a call, Redis's cost per MiB grows (1.4 MB
#: envelopes: ~4 ms each server-side four to a call, ~9 ms sixteen to a call).
_FETCH_BYTES = 4 << 20
#: Messages the first fetch takes, before any envelope size is known.
_FIRST_FETCH = 8


@dataclass(frozen=True, slots=True)
class _Order:
    """The keys of one fetch in one rotation of the queues (so no queue is preferred)."""

    keys: list[str]
    queues: list[str]
    lists: list[str]
    #: Each list's delivery ``extra`` (its list and group), shared by every delivery from it:
    #: nothing writes to it, and a dict per message would be garbage-collector work.
    extras: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Group:
    """Queues whose keys one fetch script may touch together: all of them on a single server,
    one group per hash tag on a Redis Cluster (SPEC.md §6.3, "Redis Cluster")."""

    keys: Keys
    held: str
    settle_keys: list[str]
    orders: list[_Order]
    tail: list[Any]
    turn: int = 0


class RedisConsumer(Consumer):
    """Pops batches atomically recorded in Kombu's ``unacked`` bookkeeping and in its own held
    hash; renews its deadline and re-scores its holds while it keeps calling :meth:`fetch`."""

    def __init__(self, transport: RedisTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.transport = transport
        self.client = transport.connected()
        self.id = uuid.uuid4().hex
        self.unsettled: dict[str, Delivery] = {}
        settings = transport.settings
        by_keys: dict[str, tuple[Keys, list[str]]] = {}
        for q in self.queues:
            k = transport.keys_for(q)
            by_keys.setdefault(k.prefix, (k, []))[1].append(q)
        self._groups = [self._group(k, qs) for k, qs in by_keys.values()]
        self._orders = self._groups[0].orders
        self._turn = 0
        vt = settings.visibility_timeout
        # Declared dead 0.75 x visibility_timeout after its last renewal, so that with renewals
        # every second (or vt/10) and restore passes a consumer runs on demand, a killed
        # consumer's holds are back within about visibility_timeout.
        self._live_for = 0.75 * vt
        self._renew_every = min(1.0, vt / 10)
        self._renew_at = 0.0
        self._restore_at = 0.0
        self._down_since: float | None = None
        self._closed = False
        #: Most messages the next fetch takes: _FETCH_BYTES over the mean envelope size of the
        #: last fetch that got any.
        self._batch = _FIRST_FETCH
        #: Settlements the server did not take (an outage, a failover): retried before every
        #: fetch, their deliveries kept as unsettled until then. Each is idempotent.
        self._unsent: list[tuple[_Group, list[str], list[tuple[str, str, str, bytes]]]] = []
        self._channels = [transport.keys_for(q).wake(q) for q in self.queues]
        self._pubsub: Any = None
        with transport.errors("subscribe to wake-ups"):
            self._subscribe()

    def _group(self, k: Keys, queues: list[str]) -> _Group:
        held = k.held(self.id)
        fixed = [k.unacked, k.unacked_index, k.raw, k.raw_seq, k.consumers, k.owners, held]
        orders: list[_Order] = []
        n = len(queues)
        for r in range(n):
            order = [*queues[r:], *queues[:r]]
            lists = [k.ready_lists(q)[s] for s in range(len(k.steps)) for q in order]
            orders.append(_Order([*fixed, *lists, *(k.delayed(q) for q in order)], order, lists))
        tail = [self.transport.settings.kombu_visibility_timeout, n, *k.steps]
        settle_keys = [k.unacked, k.unacked_index, k.raw, k.owners, held]
        group = _Group(k, held, settle_keys, orders, tail)
        for o in orders:
            o.extras.extend({"list": name, "group": group} for name in o.lists)
        return group

    def _subscribe(self) -> None:
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
        self._pubsub.subscribe(*self._channels)

    # -- receiving ------------------------------------------------------------------------------
    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            room = min(max_messages, self.prefetch - len(self.unsettled), self._batch)
            now = time.monotonic()
            renew = now >= self._renew_at
            if room <= 0 and not renew:
                return []
            try:
                if self._unsent:
                    self._resettle()
                    room = min(max_messages, self.prefetch - len(self.unsettled), self._batch)
                got = self._fetch_groups(max(room, 0), renew, now)
                if not got and room > 0:
                    left = _POLL if deadline is None else deadline - time.monotonic()
                    if left > 0:
                        self._wait(min(left, _POLL))
                        continue
                self._down_since = None
                return got
            except self.transport.topology_errors as exc:
                self.transport.topology_changed(exc)
                self._outage(exc)
                return []

    def _fetch_groups(self, room: int, renew: bool, now: float) -> list[Delivery]:
        """Fetch from each group in turn while there is room; every group when renewing (each
        one's server keeps its own record of this consumer's deadline)."""
        groups = self._groups
        start = self._turn
        self._turn = (start + 1) % len(groups)
        got: list[Delivery] = []
        for i in range(len(groups)):
            left = room - len(got)
            if left <= 0 and not renew:
                break
            got += self._fetch_once(groups[(start + i) % len(groups)], max(left, 0), renew, now)
        if renew:
            self._renew_at = now + self._renew_every
        return got

    def _fetch_once(self, group: _Group, room: int, renew: bool, now: float) -> list[Delivery]:
        order = group.orders[group.turn]
        group.turn = (group.turn + 1) % len(group.orders)
        out = self.transport.fetch_script(
            keys=order.keys,
            args=[room, self.id, self._live_for if renew else 0, *group.tail],
        )
        got: list[Delivery] = []
        queues, extras, n = order.queues, order.extras, len(order.queues)
        unsettled = self.unsettled
        size = 0
        for i in range(2, len(out), 3):
            tag, index, envelope = out[i].decode(), out[i + 1] - 1, out[i + 2]
            size += len(envelope)
            queue = queues[index % n]
            extra = extras[index]
            try:
                wire, redelivered = _unpack(envelope)
                d = Delivery(queue, wire, tag, redelivered, envelope, None, extra)
            except ProtocolError as exc:
                d = Delivery(queue, None, tag, False, envelope, exc, extra)
                self._keep_readable(group.keys, tag, envelope)
            unsettled[tag] = d
            got.append(d)
        if got:
            self._batch = max(_FETCH_BYTES // max(size // len(got), 1), 1)
        restorer = self.transport.restorer_for(group.keys)
        mine = (
            len(unsettled)
            if len(self._groups) == 1
            else sum(1 for d in unsettled.values() if d.extra["group"] is group)
        )
        if out[1] > mine:
            # A fetch whose reply was lost (connection cut) left holds nobody will process.
            restorer.strays(self.id, unsettled)
        if out[0] and now >= self._restore_at:
            restored = restorer.run()
            self._restore_at = now + (0.25 if restored else 1.0)
        return got

    def _keep_readable(self, k: Keys, tag: str, envelope: bytes) -> None:
        """Kombu's restore must be able to read every ``unacked`` record: an entry the fetch
        script recorded there although it is not JSON moves to the raw hash."""
        if tag.startswith("celeriac-raw-"):
            return
        try:
            json.loads(envelope)
        except ValueError:
            self.transport.set_raw_script(
                keys=[k.unacked, k.unacked_index, k.raw], args=[tag, envelope]
            )

    def _wait(self, seconds: float) -> None:
        """Sleep until a producer pokes one of our queues, at most ``seconds``."""
        if self._pubsub is None:
            # The wake-up subscription broke (its server went away): poll, and subscribe again.
            time.sleep(seconds)
            try:
                self._subscribe()
            except self.transport.topology_errors:
                self._pubsub = None
            return
        try:
            if self._pubsub.get_message(timeout=seconds) is not None:
                while self._pubsub.get_message(timeout=0.0) is not None:
                    pass  # several pokes while we were busy: one fetch serves them all
        except self.transport.topology_errors:
            if not self.transport.resubscribes:
                raise
            with contextlib.suppress(Exception):
                self._pubsub.close()
            self._pubsub = None

    def _outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.warning("Redis at %s: %s; the consumer retries", self.transport.address, exc)
        elif now - self._down_since > self.transport.settings.visibility_timeout:
            raise self.transport.unavailable("fetch", exc) from exc

    # -- settling -------------------------------------------------------------------------------
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        # A delivery restored after an outage comes back under its old tag, so one batch can
        # name a tag twice: settle it once.
        unsettled = self.unsettled
        by_group: dict[int, tuple[_Group, dict[str, None]]] = {}
        for d in deliveries:
            held = unsettled.get(d.tag)
            if held is not None:
                group = held.extra["group"]
                entry = by_group.get(id(group))
                if entry is None:
                    entry = by_group[id(group)] = (group, {})
                entry[1][d.tag] = None
        for group, tags in by_group.values():
            if self._settle(group, list(tags), ()):
                for tag in tags:
                    unsettled.pop(tag, None)

    def reject(self, delivery: Delivery, reason: str) -> None:
        if delivery.tag not in self.unsettled:
            return
        queue = dead_letter_queue(delivery.queue)
        envelope = json_envelope.pack_wire(dead_letter_message(delivery, reason), routing_key=queue)
        group = delivery.extra["group"]
        if self._settle(group, (), [(delivery.tag, "L", group.keys.ready(queue), envelope)]):
            del self.unsettled[delivery.tag]

    def requeue(self, delivery: Delivery) -> None:
        if delivery.tag not in self.unsettled:
            return
        # To the back of the line, as Kombu's reject(requeue=True) does.
        push = (delivery.tag, "L", delivery.extra["list"], _redelivered(delivery))
        if self._settle(delivery.extra["group"], (), [push]):
            del self.unsettled[delivery.tag]

    def _settle(
        self, group: _Group, tags: Sequence[str], pushes: Sequence[tuple[str, str, str, bytes]]
    ) -> bool:
        """Settle now; if the server cannot take it (the topology changed), keep it for the next
        fetch and return False: the deliveries stay held by this live consumer meanwhile."""
        try:
            with self.transport.errors("settle deliveries", topology=False):
                self._send_settle(group, tags, pushes)
            return True
        except self.transport.topology_errors as exc:
            self.transport.topology_changed(exc)
            self._unsent.append((group, list(tags), list(pushes)))
            log.warning(
                "Redis at %s: could not settle %d deliveries (%s); retried before the next fetch",
                self.transport.address,
                len(tags) + len(pushes),
                exc,
            )
            return False

    def _resettle(self) -> None:
        while self._unsent:
            group, tags, pushes = self._unsent[0]
            self._send_settle(group, tags, pushes)
            self._unsent.pop(0)
            for tag in (*tags, *(p[0] for p in pushes)):
                self.unsettled.pop(tag, None)

    def _send_settle(
        self, group: _Group, tags: Sequence[str], pushes: Sequence[tuple[str, str, str, bytes]]
    ) -> None:
        args: list[Any] = [self.id, len(tags), *tags]
        for tag, side, _, envelope in pushes:
            args += (tag, side, envelope)
        self.transport.settle_script(keys=[*group.settle_keys, *(p[2] for p in pushes)], args=args)

    def close(self) -> None:
        """Unsettled deliveries go back to the front of their lists, in delivery order."""
        if self._closed:
            return
        self._closed = True
        failed: tuple[type[Exception], ...] = (
            redis.RedisError,
            OSError,
            *self.transport.topology_errors,
        )
        try:
            self._resettle()
            for group in self._groups:
                pushes = [
                    (d.tag, "R", d.extra["list"], _redelivered(d))
                    for d in reversed(self.unsettled.values())
                    if d.extra["group"] is group
                ]
                if pushes:
                    self._send_settle(group, (), pushes)
            self.unsettled.clear()
            for group in self._groups:
                self.transport.restorer_for(group.keys).strays(self.id, ())
                pipe = self.client.pipeline(transaction=False)
                pipe.zrem(group.keys.consumers, self.id)
                pipe.delete(group.held)
                pipe.execute()
        except failed as exc:
            log.warning(
                "Redis at %s: closing consumer %s: %s; its deliveries come back when its "
                "deadline passes",
                self.transport.address,
                self.id,
                exc,
            )
        finally:
            if self._pubsub is not None:
                self._pubsub.close()


def _redelivered(delivery: Delivery) -> bytes:
    """The delivery's envelope as popped, marked redelivered (raw entries go back as they
    came). The stdlib decoder keeps every number exact and the keys in order."""
    raw = delivery.raw or b""
    if delivery.message is None:
        return raw
    try:
        envelope = json.loads(raw)
    except ValueError:
        return raw
    mark_redelivered(envelope)
    return json.dumps(envelope).encode()
