"""What remote control may see and change of a worker, and the error a command raises."""

from __future__ import annotations

import signal as signals
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ...config import Settings

#: A command: called with the request's arguments, it returns the reply.
Handler = Callable[..., Any]


class Controlled(Protocol):
    """What remote control may read and change in a worker: this, and nothing else."""

    hostname: str
    queues: list[str]
    concurrency: int

    def task_names(self) -> list[str]:
        """The registered tasks' names."""

    def counters(self) -> dict[str, Any]:
        """``total`` (tasks run by name), ``pool`` (its kind), ``prefetch``, ``broker`` (scheme)."""

    def active_tasks(self) -> list[dict[str, Any]]:
        """Tasks running, as ``inspect active`` shows them."""

    def reserved_tasks(self) -> list[dict[str, Any]]:
        """Tasks received and waiting for their rate limit."""

    def revoked_ids(self) -> list[str]:
        """The revoked task ids this worker remembers."""

    def revoke(
        self, ids: Sequence[str], terminate: bool = False, signum: int = signals.SIGTERM
    ) -> None:
        """Never start these tasks; with ``terminate``, stop them where they run (``signum``:
        the signal a prefork child is sent)."""

    def set_rate_limit(self, task_name: str, rate: float | None) -> None:
        """Calls per second for ``task_name`` (None: no limit)."""

    def set_time_limits(self, task_name: str, soft: float | None, hard: float | None) -> None:
        """Time limits for ``task_name``, over the message's and the task's."""

    def change_queues(self, queues: Sequence[str]) -> None:
        """Consume ``queues`` from now on."""

    def autoscale(self, high: int, low: int) -> tuple[int, int]:
        """New autoscaler bounds (without an autoscaler: resize to ``high``); the bounds set."""

    def restart_pool(self, modules: Sequence[str] | None = None, reload: bool = False) -> None:
        """Import (or reload) task modules, reset rate limits, replace the pool's processes."""

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` tasks at once; CommandError when the pool cannot."""

    def set_events(self, enabled: bool) -> None:
        """Send task events, or stop sending them."""

    def stop(self) -> None:
        """Warm shutdown."""

    send_events: bool

    def settings(self) -> Settings:
        """The worker's settings (read only)."""

    def pool_pids(self) -> list[int]:
        """The pids of the pool's processes (empty for pools that run in this process)."""

    def rate_limits(self) -> dict[str, float]:
        """Task name to calls per second, for the tasks that have a rate limit."""

    def running_ids(self) -> set[str]:
        """Ids of the tasks running now."""

    def heartbeat(self) -> None:
        """Send a ``worker-heartbeat`` event now."""


class CommandError(Exception):
    """A command that cannot be carried out as asked; its text is the error reply."""
