"""A worker inside the test process, as Celery's ``celery.contrib.testing.worker``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...app import App
    from ...worker import Worker

__all__ = ["start_worker"]


@contextlib.contextmanager
def start_worker(
    app: App,
    concurrency: int = 1,
    pool: str = "solo",
    loglevel: str | int = "WARNING",
    logfile: str | None = None,
    perform_ping_check: bool = True,
    ping_task_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
    **kwargs: Any,
) -> Iterator[Worker]:
    """Run a worker for ``app`` in a thread for the duration of the block; it is consuming
    when the block starts (what Celery's ping check waits for) and stopped at its end.
    ``queues`` and ``hostname`` may be given as keywords."""
    from ...worker import run_worker, stop_worker

    unknown = set(kwargs) - {"queues", "hostname"}
    if unknown:
        raise TypeError(f"start_worker(): options not supported here: {sorted(unknown)}")
    if logfile is not None:
        raise TypeError("start_worker(logfile=...): the embedded worker logs through logging")
    logger = logging.getLogger("celeriac")
    level = logger.level
    logger.setLevel(loglevel if isinstance(loglevel, int) else loglevel.upper())
    worker = run_worker(app, concurrency=concurrency, pool=pool, **kwargs)
    try:
        yield worker
    finally:
        try:
            stop_worker(worker, timeout=shutdown_timeout)
        finally:
            logger.setLevel(level)
