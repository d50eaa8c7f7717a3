"""``redis://`` results, as Celery's Redis backend keeps them (SPEC.md §7): the record under
``celery-task-meta-<id>`` (SETEX), announced on the channel of the same name, so a waiting
client wakes at once instead of polling."""

from __future__ import annotations

import time
from typing import Any

import redis

from celeriac.protocol.results import (
    ResultRecord,
    chord_keys,
    decode_result,
    encode_result,
    result_key,
)
from celeriac.protocol.serializers import dumps, loads
from celeriac.protocol.states import READY_STATES
from celeriac.transports.errors import BrokerUnavailable
from celeriac.transports.registry import redact_url

from .base import ResultBackend, pending

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

# One chord part in, atomically; the caller that completes the chord gets every part.
_CHORD_PART = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local parts = redis.call('ZRANGE', KEYS[1], 0, -1)
  redis.call('DEL', KEYS[1])
  return parts
end
return false
"""


class RedisBackend(ResultBackend):
    """Result records in Redis, readable by Celery's Redis backend and vice versa."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        try:
            self.client = redis.Redis.from_url(url, socket_connect_timeout=5)
            self.client.ping()
        except redis.RedisError as exc:
            raise BrokerUnavailable(
                f"result backend {redact_url(url)} is unreachable ({exc}); is Redis running "
                "there, and are the host, port, password and database right?"
            ) from exc
        self._store = self.client.register_script(_STORE)
        self._chord = self.client.register_script(_CHORD_PART)

    def store(self, record: ResultRecord) -> None:
        ttl = 0 if self.expires is None else max(int(self.expires), 1)
        self._store(keys=[result_key(record.task_id)],
                    args=[encode_result(record), ttl, record.status])  # fmt: skip

    def get(self, task_id: str) -> ResultRecord:
        raw = self.client.get(result_key(task_id))
        if raw is None:
            return pending(task_id)
        return decode_result(raw.encode() if isinstance(raw, str) else raw)

    def forget(self, task_id: str) -> None:
        self.client.delete(result_key(task_id))

    def wait(
        self, task_id: str, timeout: float | None = None, interval: float = 0.05
    ) -> ResultRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(result_key(task_id))
            # Subscribed first, then read: a record written in between is not missed.
            record = self.get(task_id)
            while record.status not in READY_STATES:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout} s")
                message = pubsub.get_message(timeout=1.0 if left is None else min(left, 1.0))
                if message is not None:
                    record = decode_result(message["data"])
        finally:
            pubsub.close()
        return record

    def chord_part_return(
        self, group_id: str, index: int, size: int, result: Any
    ) -> list[Any] | None:
        member, _, _ = dumps([index, result])
        ttl = 86400 if self.expires is None else max(int(self.expires), 1)
        parts = self._chord(keys=[chord_keys(group_id)[0]], args=[index, member, size, ttl])
        if not parts:
            return None
        decoded = sorted((loads(p, "application/json") for p in parts), key=lambda p: p[0])
        return [value for _, value in decoded]

    def close(self) -> None:
        self.client.close()
