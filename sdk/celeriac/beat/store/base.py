"""What every lock store offers beats (:class:`LockStore`), what a record answers, and the
error a store URL that cannot be used raises."""

from __future__ import annotations

import abc

#: :meth:`LockStore.record` answers: written; refused (not the leader under that token);
#: refused (the stored tick is already as late).
RECORDED, FENCED, STALE = "recorded", "fenced", "stale"


class LockStoreError(RuntimeError):
    """A lock store URL that cannot be used."""


class LockStore(abc.ABC):
    """Leader election with fencing tokens, and the last tick of each schedule entry."""

    url: str

    @abc.abstractmethod
    def acquire(self, owner: str) -> int | None:
        """Take or renew the lease for ``owner``: the fencing token while it leads, else None."""

    @abc.abstractmethod
    def leader(self) -> str | None:
        """Who holds the lease now (its owner string), if anyone."""

    @abc.abstractmethod
    def last_ticks(self) -> dict[str, int]:
        """Each entry's last tick (microseconds since the epoch)."""

    @abc.abstractmethod
    def record(self, owner: str, token: int, entry: str, tick: int) -> str:
        """Set ``entry``'s last tick to ``tick`` if ``owner`` leads under ``token`` and the
        stored tick is earlier: :data:`RECORDED`, :data:`FENCED` or :data:`STALE`."""

    @abc.abstractmethod
    def release(self, owner: str, token: int) -> None:
        """Give the lease up (so another beat takes over at once)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close connections."""
