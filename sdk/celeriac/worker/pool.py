"""The seam between the loop and where tasks run: the :class:`Pool` protocol, and
:func:`make_pool`, the one place that knows the pool kinds."""

from __future__ import annotations

import signal
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Protocol

from .job import Job, Outcome

if TYPE_CHECKING:
    from ..app import App

__all__ = ["POOLS", "Done", "Pool", "PoolError", "make_pool"]

#: Called once per submitted job, from any thread, with how it ended.
Done = Callable[[Job, Outcome], None]
POOLS = ("prefork", "threads", "asyncio", "solo")


class PoolError(Exception):
    """A pool cannot do what was asked (resize a fixed pool); the text says why."""


class Pool(Protocol):
    """Runs jobs and reports each one's outcome; the loop never knows which kind it holds."""

    #: The kind, as ``-P`` names it, and how many jobs run at once.
    name: str
    concurrency: int

    def submit(self, job: Job, on_done: Done) -> None:
        """Run ``job`` (now or when a slot frees); call ``on_done`` exactly once."""

    def terminate(self, job_id: str, signum: int = signal.SIGTERM) -> bool:
        """Stop a running job (revoke with terminate); False when it does not run here."""

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` jobs at once; raises PoolError when this pool cannot."""

    def restart(self) -> None:
        """Replace the pool's processes (``pool_restart``): idle ones now, busy ones once their
        task ends; pools that run tasks in this process have nothing to replace."""

    def close(self) -> None:
        """Finish what runs (the loop has waited for it), then release the pool's resources."""


def make_pool(
    kind: str, app: App, concurrency: int, revoked: Container[str], hostname: str
) -> Pool:
    """The pool ``kind`` (prefork, threads, asyncio or solo) with its resources started."""
    if kind == "prefork":
        from .prefork import PreforkPool

        return PreforkPool(app, concurrency, revoked, hostname)
    if kind == "asyncio":
        from .asyncio_pool import AsyncioPool

        return AsyncioPool(app, concurrency, revoked, hostname)
    from .threads import SoloPool, ThreadPool

    if kind == "solo":
        return SoloPool(app, revoked, hostname)
    if kind == "threads":
        return ThreadPool(app, concurrency, revoked, hostname)
    raise ValueError(f"unknown pool {kind!r}; choose {', '.join(POOLS)}")


def check_pool(kind: str, app: App) -> int | None:
    """Refuse a pool that cannot work with these settings; return a fixed concurrency."""
    if kind not in POOLS:
        raise ValueError(f"unknown pool {kind!r}; choose {', '.join(POOLS)}")
    if kind == "prefork":
        shared = [("broker", app.conf.broker_url), ("result backend", app.conf.result_backend)]
        for what, url in shared:
            if (url or "").startswith("memory:"):
                raise ValueError(
                    f"the prefork pool runs tasks in other processes, which cannot reach a "
                    f"memory:// {what}; use sqlite://, redis:// or another shared one"
                )
    return 1 if kind == "solo" else None
