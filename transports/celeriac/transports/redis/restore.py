"""Giving back deliveries nobody will settle (SPEC.md §6.3).

Three kinds: those of dead Celeriac consumers (their deadline in ``celeriac.consumers`` has
passed), those a Kombu consumer left in ``unacked`` past Kombu's visibility timeout, and a live
consumer's own strays (popped by a fetch whose reply was lost). Each record goes back with
one compare-and-set script, so a concurrent ack, a Kombu restore or another Celeriac restore
never makes a second copy. The periodic pass holds ``unacked_mutex`` as Kombu's does.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from celeriac.protocol.envelopes.redis import PRIORITY_SEP

from .keys import Keys
from .options import RedisOptions
from .scripts import FORGET, RELEASE, RESTORE_ONE

__all__ = ["Restorer", "kombu_priority", "mark_redelivered"]

log = logging.getLogger("celeriac.transports.redis")

#: Kombu's default dead-letter queue (``Channel.deadletter_queue``), its last resort too.
_UNDELIVERABLE = "ae.undeliver"
#: Records at most looked at per pass (Kombu's ``unacked_restore_limit`` has no default).
_LIMIT = 1000


#: Counts the times a message was given back (as RabbitMQ quorum queues name it), so a message
#: that kills every worker that takes it is dead-lettered as poison, not run forever.
DELIVERY_COUNT_HEADER = "x-delivery-count"


def mark_redelivered(envelope: Any) -> None:
    """Set the two flags Kombu sets on a message it gives back, and count the give-back."""
    if not isinstance(envelope, dict):
        return
    headers = envelope.get("headers")
    if isinstance(headers, dict):
        headers["redelivered"] = True
        before = headers.get(DELIVERY_COUNT_HEADER)
        if isinstance(before, int) and not isinstance(before, bool) and 0 <= before < 1 << 31:
            headers[DELIVERY_COUNT_HEADER] = before + 1
        else:
            headers[DELIVERY_COUNT_HEADER] = 1
    properties = envelope.get("properties")
    info = properties.get("delivery_info") if isinstance(properties, dict) else None
    if isinstance(info, dict):
        info["redelivered"] = True


def kombu_priority(envelope: Any) -> int:
    """``properties.priority`` as Kombu reads it: ``int()``, clamped to 0..9, else 0."""
    try:
        return max(0, min(int(envelope["properties"]["priority"]), 9))
    except (KeyError, TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class _Record:
    """One delivery to give back."""

    tag: str
    hash_key: str  # unacked, or raw for entries that are not envelopes
    record: bytes | None  # as read; None when there was none
    owner: str  # the Celeriac consumer holding it; "" when Kombu's
    source: str | None  # the list it was popped from, when a Celeriac consumer popped it


class Restorer:
    """Finds what must go back and puts it back, for one transport's keys."""

    #: Whether scripts may be queued in a pipeline (redis-py's cluster pipelines cannot load a
    #: script a server lacks, as after a failover: there each call goes on its own).
    pipelined_scripts = True

    def __init__(self, client: Any, keys: Keys, options: RedisOptions) -> None:
        # Any: redis-py types each reply as the union of every RESP shape.
        self.client: Any = client
        self.keys = keys
        self.options = options
        self.restore_one = client.register_script(RESTORE_ONE)
        self.forget = client.register_script(FORGET)
        self.release = client.register_script(RELEASE)

    def run(self) -> int:
        """One pass under ``unacked_mutex``; returns how many deliveries went back (0 when
        another party holds the lock)."""
        k = self.keys
        token = uuid.uuid4().hex
        expire = int(self.options.unacked_mutex_expire * 1000)
        if not self.client.set(k.unacked_mutex, token, nx=True, px=expire):
            return 0
        try:
            now = self.now()
            dead = [m.decode() for m in self.client.zrangebyscore(k.consumers, "-inf", now, 0, 50)]
            records: list[_Record] = []
            for consumer in dead:
                records += self._held(consumer)
            seen = {r.tag for r in records}
            stale = self.client.zrangebyscore(
                k.unacked_index, "-inf", now - self.options.kombu_visibility_timeout, 0, _LIMIT
            )
            tags = [t.decode() for t in stale if t.decode() not in seen]
            if tags:
                found = zip(tags, self.client.hmget(k.unacked, tags), strict=True)
                records += [_Record(t, k.unacked, r, "", None) for t, r in found]
            restored = self._give_back(records)
            for consumer in dead:
                self.forget(keys=[k.consumers, k.held(consumer)], args=[consumer])
            return restored
        finally:
            self.release(keys=[k.unacked_mutex], args=[token])

    def now(self) -> float:
        """The server's clock, the one the scripts' deadlines are written in."""
        seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1e6

    def strays(self, consumer: str, known: Collection[str]) -> int:
        """Give back what ``consumer`` holds on the server but not in memory."""
        return self._give_back(r for r in self._held(consumer) if r.tag not in known)

    def _held(self, consumer: str) -> list[_Record]:
        k = self.keys
        holds = {t.decode(): s.decode() for t, s in self.client.hgetall(k.held(consumer)).items()}
        if not holds:
            return []
        tags = list(holds)
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(k.unacked, tags)
        pipe.hmget(k.raw, tags)
        envelopes, raws = pipe.execute()
        return [
            _Record(t, k.unacked, e, consumer, holds[t])
            if e is not None or r is None
            else _Record(t, k.raw, r, consumer, holds[t])
            for t, e, r in zip(tags, envelopes, raws, strict=True)
        ]

    def _give_back(self, records: Iterable[_Record]) -> int:
        pipe = self.client.pipeline(transaction=False)
        k = self.keys
        queued = direct = 0
        for r in records:
            targets: list[str] = []
            envelope = b""
            if r.record is None:
                pass  # nothing left to push: the script only tidies the index
            elif r.hash_key == k.raw:
                targets, envelope = [r.source or ""], r.record
            else:
                rewritten = self._rewrite(r)
                if rewritten is None:
                    self._set_aside(r)
                    continue
                envelope, targets = rewritten
            keys = [
                r.hash_key,
                k.unacked_index,
                k.owners,
                # An empty name would hash to another slot of a cluster: the unused key is ours.
                k.held(r.owner) if r.owner else k.unacked_index,
                *targets,
            ]
            args = [r.tag, r.record or b"", envelope, r.owner]
            if self.pipelined_scripts:
                self.restore_one(keys=keys, args=args, client=pipe)
                queued += 1
            else:
                direct += int(self.restore_one(keys=keys, args=args))
        return direct + (sum(int(x) for x in pipe.execute()) if queued else 0)

    def _rewrite(self, r: _Record) -> tuple[bytes, list[str]] | None:
        """The envelope marked redelivered, and where it goes: back to the list a Celeriac
        consumer popped it from, or where Kombu would route it."""
        try:
            envelope, exchange, routing_key = json.loads(r.record or b"")
        except (ValueError, TypeError):
            return None
        mark_redelivered(envelope)
        priority = kombu_priority(envelope)
        if r.source is not None:
            targets = [r.source]
        else:
            targets = [self.keys.ready(q, priority) for q in self.route(exchange, routing_key)]
        return json.dumps(envelope).encode(), targets

    def route(self, exchange: str, routing_key: str) -> list[str]:
        """Kombu's lookup: the queues bound to ``exchange`` matching ``routing_key``.

        With no binding left, the routing key is taken as the queue (Celery's default
        routing) rather than Kombu's ``ae.undeliver``, which nobody consumes.
        """
        if not exchange:
            return [routing_key or _UNDELIVERABLE]
        queues: set[str] = set()
        for member in self.client.smembers(self.keys.binding(exchange)):
            parts = member.decode(errors="replace").split(PRIORITY_SEP, 2)
            if len(parts) != 3:
                continue
            key, pattern, queue = parts
            try:
                matched = re.match(pattern, routing_key) if pattern else key == routing_key
            except re.error:
                matched = False
            if matched:
                queues.add(queue)
        return sorted(queues) or [routing_key or _UNDELIVERABLE]

    def _set_aside(self, r: _Record) -> None:
        """A record nobody can parse: moved to a list of its own, never dropped."""
        aside = f"{self.keys.prefix}celeriac.unrestorable"
        log.error(
            "unacked record %r is not [envelope, exchange, routing_key]; moved to list %r",
            r.tag,
            aside,
        )
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(aside, r.record or b"")
        pipe.hdel(r.hash_key, r.tag)
        pipe.zrem(k.unacked_index, r.tag)
        pipe.hdel(k.owners, r.tag)
        if r.owner:
            pipe.hdel(k.held(r.owner), r.tag)
        pipe.execute()
