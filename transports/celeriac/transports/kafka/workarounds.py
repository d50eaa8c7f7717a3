"""Work-arounds for kafka-python 3.0 group-membership races, kept apart from the consumer.

Each reaches into kafka-python internals, defensively: if they are gone (a fixed release), the
work-around does nothing.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["claim_finished_join", "request_rejoin", "unpark", "unstall"]


class _Unclaimed:
    """A finished join task that reads as pending, so the next poll still applies its result."""

    is_done = False

    def __init__(self, task: Any) -> None:
        self._task = task

    def add_callback(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        return self._task.add_callback(f, *args, **kwargs)

    def add_errback(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        return self._task.add_errback(f, *args, **kwargs)

    def __await__(self) -> Any:
        return self._task.__await__()


def _coordinator(consumer: Any) -> Any:
    return getattr(consumer, "_coordinator", None)


def claim_finished_join(consumer: Any) -> None:
    """A join that finishes while no poll waits for it is thrown away: the next poll sees a
    finished task and joins again, forcing another rebalance on the whole group (forever when
    members poll in turn). Wrapped as still pending, the next poll awaits it and applies it."""
    coordinator = _coordinator(consumer)
    task = getattr(coordinator, "_join_task", None)
    if task is not None and not isinstance(task, _Unclaimed) and task.succeeded():
        coordinator._join_task = _Unclaimed(task)


def unstall(consumer: Any, joining_since: float | None) -> None:
    """A rebalance started because topic metadata changed, whose poll timed out before the group
    answered, is never completed: the coordinator stops asking to rejoin and the assignment is
    never applied. Asking to rejoin again makes the next poll finish it."""
    coordinator = _coordinator(consumer)
    if coordinator is None or joining_since is None or time.monotonic() - joining_since < 0.5:
        return
    if not coordinator.need_rejoin():
        coordinator.request_rejoin()


def request_rejoin(consumer: Any) -> None:
    """Ask for a rebalance at the next poll (kafka-python has no public call for it)."""
    coordinator = _coordinator(consumer)
    if coordinator is not None:
        coordinator.request_rejoin()


def unpark(consumer: Any) -> None:
    """Records fetched for a partition that was paused while they were next in line are parked,
    and the partition is left out of every fetch until they are restored; but they are restored
    only when no other partition's batch holds the in-line slot, which under steady traffic is
    never: the partition would never be read again (its records stranded with a live owner).
    Dropping the parked batch of a partition no longer paused makes the next fetch read it again
    from its position (nothing parked was handed out). Call before every poll."""
    fetcher = getattr(consumer, "_fetcher", None)
    parked = getattr(fetcher, "_paused_partition_records", None)
    subscription = getattr(consumer, "_subscription", None)
    if not parked or subscription is None:
        return
    for tp in list(parked):
        if not subscription.is_paused(tp):
            parked.pop(tp).drain()
