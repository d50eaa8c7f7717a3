"""``memory://name``: a lock store shared by the beats of this process (threads, tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .base import FENCED, RECORDED, STALE, LockStore


@dataclass
class _Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    owner: str | None = None
    token: int = 0
    expires: float = 0.0
    ticks: dict[str, int] = field(default_factory=dict)


_MEMORY: dict[str, _Shared] = {}
_MEMORY_LOCK = threading.Lock()


class MemoryLockStore(LockStore):
    """``memory://name``: shared by the beats of this process that name the same store."""

    def __init__(self, url: str, key: str, lease: float) -> None:
        self.url = url
        self.lease = lease
        with _MEMORY_LOCK:
            self.shared = _MEMORY.setdefault(f"{url}#{key}", _Shared())

    def acquire(self, owner: str) -> int | None:
        s = self.shared
        with s.lock:
            now = time.monotonic()
            if s.owner == owner and s.expires > now:
                s.expires = now + self.lease
                return s.token
            if s.owner is not None and s.expires > now:
                return None
            s.owner, s.token, s.expires = owner, s.token + 1, now + self.lease
            return s.token

    def leader(self) -> str | None:
        with self.shared.lock:
            alive = self.shared.expires > time.monotonic()
            return self.shared.owner if alive else None

    def last_ticks(self) -> dict[str, int]:
        with self.shared.lock:
            return dict(self.shared.ticks)

    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        s = self.shared
        with s.lock:
            if (s.owner, s.token) != (owner, token) or s.expires <= time.monotonic():
                return FENCED
            if s.ticks.get(entry, -(2**63)) >= tick:
                return STALE
            s.ticks[entry] = tick
            return RECORDED

    def release(self, owner: str, token: int) -> None:
        s = self.shared
        with s.lock:
            if (s.owner, s.token) == (owner, token):
                s.expires = 0.0

    def close(self) -> None:
        """Nothing to close: the state stays for the other beats of this process."""
