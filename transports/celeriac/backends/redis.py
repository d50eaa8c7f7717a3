"""``redis://`` results, as Celery's Redis backend keeps them (SPEC.md §7): the record under
``celery-task-meta-<id>`` (SETEX), announced on the channel of the same name, so a waiting
client wakes at once instead of polling."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
import weakref
from typing import Any

import redis

from celeriac.protocol.result_tuples import decode_group, encode_group
from celeriac.protocol.results import (
    ResultRecord,
    group_key,
    result_key,
)
from celeriac.protocol.states import READY_STATES
from celeriac.transports.errors import BrokerUnavailable, TransportError
from celeriac.transports.registry import redact_url

from .base import ChordJoin, ChordPart, ResultBackend, join_parts, pending
from .redis_watch import RedisAsyncWatcher

__all__ = ["RedisBackend"]

# Write unless a final record is there already: a SUCCESS is never replaced by a late STARTED.
_STORE = """
local old = redis.call('GET', KEYS[1])
if old then
  local ok, decoded = pcall(cjson.decode, old)
  if ok and type(decoded) == 'table' then
    local s = decoded['status']
    if (s == 'SUCCESS' or s == 'FAILURE' or s == 'REVOKED') and s ~= ARGV[3] then
      return 0
    end
  end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""

# One chord part in (SPEC.md §7.5, Celery 5.7's layout): counted once per "<task id>:<score>",
# and the part that completes the chord takes the dispatch claim in the same step.
# KEYS: .j .t .s .d <group record> .c
# ARGV: task id, entry, score, expiry, claim token, claim seconds, size from the body (0: none)
_CHORD_PART = """
if redis.call('GET', KEYS[6]) == 'done' then
  return {-1, 0}
end
if tonumber(ARGV[7]) > 0 then
  redis.call('SET', KEYS[3], ARGV[7], 'NX')
end
local member = ARGV[1] .. ':' .. ARGV[3]
if redis.call('SISMEMBER', KEYS[4], member) == 0 then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('SADD', KEYS[4], member)
end
local count = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
local expiry = tonumber(ARGV[4])
if expiry > 0 then
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], expiry) end
  redis.call('EXPIRE', KEYS[5], expiry)
end
local size = redis.call('GET', KEYS[3])
if size and count == tonumber(size) + tonumber(redis.call('GET', KEYS[2]) or '0') then
  if redis.call('SET', KEYS[6], ARGV[5], 'NX', 'EX', ARGV[6]) then
    return {count, 1}
  end
end
return {count, 0}
"""

# After the body went out: drop the chord's keys and leave "done", only while we hold the claim.
# KEYS: .c .j .t .s .d   ARGV: claim token, seconds the "done" marker stays
_CHORD_CLEANUP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  redis.call('SET', KEYS[1], 'done', 'EX', ARGV[2])
  return 1
end
return 0
"""

# A start under a rate shared by every worker (GCRA, no burst): KEYS[1] holds the theoretical
# arrival time of the next start in microseconds of the server's clock. ARGV: interval (us).
# Returns 0 when the caller may start now, else the microseconds to wait.
_TAKE_TOKEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local due = tonumber(redis.call('GET', KEYS[1]) or '0')
if due > now then
  return due - now
end
local interval = tonumber(ARGV[1])
local keep_ms = math.ceil(interval / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', now + interval), 'PX', keep_ms)
return 0
"""

_CLAIM_SECONDS = 10  # Celery: max(5, 2 x result_chord_join_timeout (default 5 s))


class RedisBackend(ResultBackend):
    """Result records in Redis, readable by Celery's Redis backend and vice versa."""

    transient_errors: tuple[type[BaseException], ...] = (
        redis.ConnectionError,
        redis.TimeoutError,
        ConnectionError,
        TimeoutError,
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        try:
            self.client = self._make_client(url, options)
            self.client.ping()
        except redis.RedisError as exc:
            raise BrokerUnavailable(
                f"result backend {redact_url(url)} is unreachable ({exc}); is Redis running "
                "there, and are the host, port, password and database right?"
            ) from exc
        self._store = self.client.register_script(_STORE)
        self._chord = self.client.register_script(_CHORD_PART)
        self._take_token = self.client.register_script(_TAKE_TOKEN)
        self._chord_cleanup = self.client.register_script(_CHORD_CLEANUP)
        # asyncio connections belong to one event loop, so each loop gets its own watcher.
        self._watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisAsyncWatcher]
        self._watchers = weakref.WeakKeyDictionary()
        self._local = threading.local()

    def _make_client(self, url: str, options: dict[str, Any]) -> redis.Redis:
        unknown = sorted(set(options) - {"expires", "serializer"})
        if unknown:
            raise TransportError(f"unknown Redis result backend option(s): {', '.join(unknown)}")
        return redis.Redis.from_url(url, socket_connect_timeout=5)

    def store(self, record: ResultRecord) -> None:
        ttl = 0 if self.expires is None else max(int(self.expires), 1)
        self._store(keys=[result_key(record.task_id)],
                    args=[self.encode(record), ttl, record.status])  # fmt: skip

    def get(self, task_id: str) -> ResultRecord:
        raw = self.client.get(result_key(task_id))
        if raw is None:
            return pending(task_id)
        return self.decode(raw.encode() if isinstance(raw, str) else raw)

    def forget(self, task_id: str) -> None:
        self.client.delete(result_key(task_id))

    def save_group(self, group_id: str, tree: Any) -> None:
        # As Celery's Redis backend writes any key: SETEX (SET without expiry), then PUBLISH.
        value = encode_group(tree)
        with self.client.pipeline() as pipe:
            if self.expires is None:
                pipe.set(group_key(group_id), value)
            else:
                pipe.setex(group_key(group_id), max(int(self.expires), 1), value)
            pipe.publish(group_key(group_id), value)
            pipe.execute()

    def restore_group(self, group_id: str) -> Any:
        raw = self.client.get(group_key(group_id))
        if raw is None:
            return None
        return decode_group(raw.encode() if isinstance(raw, str) else raw)

    def delete_group(self, group_id: str) -> None:
        self.client.delete(group_key(group_id))

    def wait(
        self, task_id: str, timeout: float | None = None, interval: float = 0.05
    ) -> ResultRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        channel = result_key(task_id)
        name = channel.encode()
        pubsub = self._pubsub()
        try:
            pubsub.subscribe(channel)
            # Subscribed first, then read: a record written in between is not missed.
            record = self.get(task_id)
            while record.status not in READY_STATES:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout} s")
                message = pubsub.get_message(timeout=1.0 if left is None else min(left, 1.0))
                # A kept connection may still hold what an earlier wait's channel announced.
                if message is not None and message["channel"] in (name, channel):
                    record = self.decode(message["data"])
            pubsub.unsubscribe(channel)
        except BaseException:
            self._drop_pubsub(pubsub)  # broken or interrupted mid-reply: not used again
            raise
        if not self.keep_pubsub:
            self._drop_pubsub(pubsub)
        return record

    #: Each thread keeps its pub/sub connection from one wait to the next (a wait that opened
    #: one cost a TCP connect and redis-py's handshake, four round trips, every ``get()``).
    keep_pubsub = True

    def _pubsub(self) -> Any:
        kept = getattr(self._local, "pubsub", None)
        if kept is not None and kept[0] == os.getpid():
            return kept[1]
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
        if self.keep_pubsub:
            self._local.pubsub = (os.getpid(), pubsub)
        return pubsub

    def _drop_pubsub(self, pubsub: Any) -> None:
        kept = getattr(self._local, "pubsub", None)
        if kept is not None and kept[1] is pubsub:
            self._local.pubsub = None
        if kept is None or kept[0] == os.getpid():  # a parent's socket is left to the parent
            pubsub.close()

    async def wait_async(self, task_id: str, timeout: float | None = None) -> ResultRecord:
        loop = asyncio.get_running_loop()
        watcher = self._watchers.get(loop)
        if watcher is None:
            watcher = self._watchers[loop] = RedisAsyncWatcher(self.url, self.decode)
        return await watcher.wait(task_id, timeout)

    async def aclose(self) -> None:
        watcher = self._watchers.pop(asyncio.get_running_loop(), None)
        if watcher is not None:
            await watcher.aclose()

    def take_token(self, name: str, rate: float) -> float:
        wait_us = self._take_token(keys=[f"celeriac.rate.{name}"], args=[int(1_000_000 / rate)])
        return int(wait_us) / 1_000_000

    def set_chord_size(self, group_id: str, size: int) -> None:
        # A frozen chord applied again reuses its group id: a new run, so drop the old claim.
        ttl = None if self.expires is None else max(int(self.expires), 1)
        with self.client.pipeline() as pipe:
            pipe.delete(self._chord_key(group_id, ".c"))
            pipe.set(self._chord_key(group_id, ".s"), size, ex=ttl)
            pipe.execute()

    @staticmethod
    def _chord_key(group_id: str, suffix: str) -> str:
        return group_key(group_id) + suffix

    def chord_part_return(self, part: ChordPart) -> ChordJoin | None:
        gid = part.group_id
        j, t, s, d, c = (self._chord_key(gid, x) for x in (".j", ".t", ".s", ".d", ".c"))
        entry = self.encode_value([1, part.task_id, part.state, part.result])
        score = "+inf" if part.index is None else str(part.index)
        ttl = 0 if self.expires is None else max(int(self.expires), 1)
        token = uuid.uuid4().hex
        _, claimed = self._chord(
            keys=[j, t, s, d, group_key(gid), c],
            args=[part.task_id, entry, score, ttl, token, _CLAIM_SECONDS, part.size],
        )
        if not claimed:
            return None
        parts: list[ChordPart] = []
        entries: list[bytes] = self.client.zrange(j, 0, -1)  # type: ignore[assignment]
        for raw in entries:
            _, task_id, state, result = self.decode_value(raw)
            parts.append(ChordPart(gid, task_id, len(parts), state, result))

        def release() -> None:
            self._chord_cleanup(keys=[c, j, t, s, d], args=[token, max(2 * _CLAIM_SECONDS, 300)])

        join = join_parts(parts)
        join.release = release
        return join

    def close(self) -> None:
        super().close()
        kept = getattr(self._local, "pubsub", None)
        if kept is not None:
            self._drop_pubsub(kept[1])
        self.client.close()


class SentinelBackend(RedisBackend):
    """Results on the Redis master the sentinels name (Celery's ``sentinel://`` backend):
    ``result_backend = "sentinel://:pw@s1:26379/1;sentinel://s2:26379"`` with
    ``result_backend_transport_options = {"master_name": "mymaster"}`` (and optionally
    ``sentinel_kwargs``). After a failover the next call reaches the new master; READONLY from
    a demoted one is a connection error, retried like any other."""

    def _make_client(self, url: str, options: dict[str, Any]) -> redis.Redis:
        from redis.sentinel import Sentinel

        from celeriac.transports.redis.sentinel import master_client, sentinel_hosts

        unknown = sorted(set(options) - {"expires", "serializer", "master_name", "sentinel_kwargs"})
        if unknown:
            raise TransportError(f"unknown Sentinel result backend option(s): {', '.join(unknown)}")
        master_name = options.get("master_name")
        if not master_name:
            raise TransportError(
                "the sentinel:// result backend needs master_name in "
                "result_backend_transport_options (the name the sentinels monitor the master by)"
            )
        hosts, master = sentinel_hosts(url)
        sentinel_kwargs = {"socket_connect_timeout": 5, **(options.get("sentinel_kwargs") or {})}
        sentinel = Sentinel(
            hosts, sentinel_kwargs=sentinel_kwargs, socket_connect_timeout=5, **master
        )
        return master_client(sentinel, master_name)
