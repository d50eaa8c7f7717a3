"""``redis://``: the lease a key whose value is ``"<token> <owner>"``; renewals and records
are Lua scripts, so each check and its write are one step."""

from __future__ import annotations

from typing import Any

from .base import FENCED, RECORDED, STALE, LockStore, LockStoreError

_REDIS_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local space = string.find(current, ' ', 1, true)
  if string.sub(current, space + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(current, 1, space - 1))
  end
  return -1
end
local token = redis.call('INCR', KEYS[2])
if redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'NX', 'PX', ARGV[2]) then
  return token
end
return -1
"""
_REDIS_RECORD = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] .. ' ' .. ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2])) ~= tonumber(ARGV[2]) then return 0 end
local last = redis.call('HGET', KEYS[3], ARGV[3])
if last and tonumber(last) >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
_REDIS_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[2] .. ' ' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLockStore(LockStore):
    """``redis://``: keys ``<key>:lock``, ``<key>:fence`` and the hash ``<key>:ticks``."""

    def __init__(self, url: str, key: str, lease: float) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - an install without the extra
            raise LockStoreError(
                f"beat_lock_url {url!r} needs the redis package: pip install 'celeriac[redis]'"
            ) from exc
        self.url = url
        self.lease_ms = max(1, round(lease * 1000))
        self.client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.keys = (f"{key}:lock", f"{key}:fence", f"{key}:ticks")
        self._acquire = self.client.register_script(_REDIS_ACQUIRE)
        self._record = self.client.register_script(_REDIS_RECORD)
        self._release = self.client.register_script(_REDIS_RELEASE)

    def acquire(self, owner: str) -> int | None:
        token = int(self._acquire(keys=self.keys[:2], args=[owner, self.lease_ms]))
        return token if token > 0 else None

    def leader(self) -> str | None:
        value = self.client.get(self.keys[0])
        return None if value is None else value.decode().partition(" ")[2]

    def last_ticks(self) -> dict[str, int]:
        raw = self.client.hgetall(self.keys[2])
        return {name.decode(): int(value) for name, value in raw.items()}

    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        done = int(self._record(keys=self.keys, args=[owner, token, entry, tick]))
        return RECORDED if done == 1 else STALE if done == -1 else FENCED

    def release(self, owner: str, token: int) -> None:
        self._release(keys=self.keys[:1], args=[owner, token])

    def close(self) -> None:
        self.client.close()
