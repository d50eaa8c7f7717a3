"""The Redis consumer: one Lua script per batch, liveness renewed by fetch (SPEC.md §6.3)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import json_envelope

from ..base import Consumer, Delivery, dead_letter_queue
from ..dead_letter import dead_letter_message
from .restore import mark_redelivered

if TYPE_CHECKING:
    from .transport import RedisTransport

__all__ = ["RedisConsumer"]

log = logging.getLogger("celeriac.transports.redis")

_unpack = json_envelope.unpack_wire
#: Longest idle wait between two fetch scripts: Kombu producers do not announce their pushes.
_POLL = 0.1


@dataclass(frozen=True, slots=True)
class _Order:
    """The keys of one fetch in one rotation of the queues (so no queue is preferred)."""

    keys: list[str]
    queues: list[str]
    lists: list[str]


class RedisConsumer(Consumer):
    """Pops batches atomically recorded in Kombu's ``unacked`` bookkeeping and in its own held
    hash; renews its deadline and re-scores its holds while it keeps calling :meth:`fetch`."""

    def __init__(self, transport: RedisTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.transport = transport
        self.client = transport.connected()
        self.id = uuid.uuid4().hex
        self.unsettled: dict[str, Delivery] = {}
        k = transport.keys
        self._held = k.held(self.id)
        fixed = [k.unacked, k.unacked_index, k.raw, k.raw_seq, k.consumers, k.owners, self._held]
        self._settle_keys = [k.unacked, k.unacked_index, k.raw, k.owners, self._held]
        self._orders: list[_Order] = []
        n = len(self.queues)
        for r in range(n):
            order = [*self.queues[r:], *self.queues[:r]]
            lists = [k.ready_lists(q)[s] for s in range(len(k.steps)) for q in order]
            self._orders.append(
                _Order([*fixed, *lists, *(k.delayed(q) for q in order)], order, lists)
            )
        self._turn = 0
        settings = transport.settings
        vt = settings.visibility_timeout
        # Declared dead 0.75 x visibility_timeout after its last renewal, so that with renewals
        # every second (or vt/10) and restore passes a consumer runs on demand, a killed
        # consumer's holds are back within about visibility_timeout.
        self._live_for = 0.75 * vt
        self._renew_every = min(1.0, vt / 10)
        self._renew_at = 0.0
        self._restore_at = 0.0
        self._tail = [settings.kombu_visibility_timeout, n, *k.steps]
        self._down_since: float | None = None
        self._closed = False
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
        with transport.errors("subscribe to wake-ups"):
            self._pubsub.subscribe(*(k.wake(q) for q in self.queues))

    # -- receiving ------------------------------------------------------------------------------
    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            room = min(max_messages, self.prefetch - len(self.unsettled))
            now = time.monotonic()
            renew = now >= self._renew_at
            if room <= 0 and not renew:
                return []
            try:
                got = self._fetch_once(max(room, 0), renew, now)
                if not got and room > 0:
                    left = _POLL if deadline is None else deadline - time.monotonic()
                    if left > 0:
                        self._wait(min(left, _POLL))
                        continue
                self._down_since = None
                return got
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._outage(exc)
                return []

    def _fetch_once(self, room: int, renew: bool, now: float) -> list[Delivery]:
        order = self._orders[self._turn]
        self._turn = (self._turn + 1) % len(self._orders)
        out = self.transport.fetch_script(
            keys=order.keys,
            args=[room, self.id, self._live_for if renew else 0, *self._tail],
        )
        if renew:
            self._renew_at = now + self._renew_every
        got: list[Delivery] = []
        n = len(order.queues)
        unsettled = self.unsettled
        for i in range(2, len(out), 3):
            tag, index, envelope = out[i].decode(), out[i + 1] - 1, out[i + 2]
            queue = order.queues[index % n]
            try:
                wire, info = _unpack(envelope)
                d = Delivery(queue, wire, tag, info.redelivered, raw=envelope)
            except ProtocolError as exc:
                d = Delivery(queue, None, tag, False, raw=envelope, error=exc)
                self._keep_readable(tag, envelope)
            d.extra["list"] = order.lists[index]
            unsettled[tag] = d
            got.append(d)
        if out[1] > len(unsettled):
            # A fetch whose reply was lost (connection cut) left holds nobody will process.
            self.transport.restorer.strays(self.id, unsettled)
        if out[0] and now >= self._restore_at:
            restored = self.transport.restorer.run()
            self._restore_at = now + (0.25 if restored else 1.0)
        return got

    def _keep_readable(self, tag: str, envelope: bytes) -> None:
        """Kombu's restore must be able to read every ``unacked`` record: an entry the fetch
        script recorded there although it is not JSON moves to the raw hash."""
        if tag.startswith("celeriac-raw-"):
            return
        try:
            json.loads(envelope)
        except ValueError:
            k = self.transport.keys
            self.transport.set_raw_script(
                keys=[k.unacked, k.unacked_index, k.raw], args=[tag, envelope]
            )

    def _wait(self, seconds: float) -> None:
        """Sleep until a producer pokes one of our queues, at most ``seconds``."""
        if self._pubsub.get_message(timeout=seconds) is not None:
            while self._pubsub.get_message(timeout=0.0) is not None:
                pass  # several pokes while we were busy: one fetch serves them all

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
        tags = list(dict.fromkeys(d.tag for d in deliveries if d.tag in self.unsettled))
        if tags:
            self._settle(tags, ())
            for tag in tags:
                self.unsettled.pop(tag, None)

    def reject(self, delivery: Delivery, reason: str) -> None:
        if delivery.tag not in self.unsettled:
            return
        queue = dead_letter_queue(delivery.queue)
        envelope = json_envelope.pack_wire(dead_letter_message(delivery, reason), routing_key=queue)
        self._settle((), [(delivery.tag, "L", self.transport.keys.ready(queue), envelope)])
        del self.unsettled[delivery.tag]

    def requeue(self, delivery: Delivery) -> None:
        if delivery.tag not in self.unsettled:
            return
        # To the back of the line, as Kombu's reject(requeue=True) does.
        self._settle((), [(delivery.tag, "L", delivery.extra["list"], _redelivered(delivery))])
        del self.unsettled[delivery.tag]

    def _settle(self, tags: Sequence[str], pushes: Sequence[tuple[str, str, str, bytes]]) -> None:
        args: list[Any] = [self.id, len(tags), *tags]
        for tag, side, _, envelope in pushes:
            args += (tag, side, envelope)
        with self.transport.errors("settle deliveries"):
            self.transport.settle_script(
                keys=[*self._settle_keys, *(p[2] for p in pushes)], args=args
            )

    def close(self) -> None:
        """Unsettled deliveries go back to the front of their lists, in delivery order."""
        if self._closed:
            return
        self._closed = True
        try:
            pushes = [
                (d.tag, "R", d.extra["list"], _redelivered(d))
                for d in reversed(self.unsettled.values())
            ]
            if pushes:
                self._settle((), pushes)
            self.unsettled.clear()
            self.transport.restorer.strays(self.id, ())
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(self.transport.keys.consumers, self.id)
            pipe.delete(self._held)
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "Redis at %s: closing consumer %s: %s; its deliveries come back when its "
                "deadline passes",
                self.transport.address,
                self.id,
                exc,
            )
        finally:
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
