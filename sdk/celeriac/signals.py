"""Signals sent around task execution, with Celery's names and arguments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "Signal",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_retry",
    "task_revoked",
    "task_success",
    "worker_ready",
    "worker_shutdown",
]

log = logging.getLogger("celeriac.signals")


class Signal:
    """Receivers connected to a named event; a receiver that raises is logged, never fatal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[Callable[..., Any]] = []
        self._lock = threading.Lock()

    def connect(self, receiver: Callable[..., Any]) -> Callable[..., Any]:
        """Add a receiver (usable as a decorator)."""
        with self._lock:
            self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver: Callable[..., Any]) -> None:
        """Remove a receiver."""
        with self._lock:
            if receiver in self._receivers:
                self._receivers.remove(receiver)

    def send(self, sender: Any = None, **kwargs: Any) -> None:
        """Call every receiver with ``sender`` and the keyword arguments."""
        for receiver in list(self._receivers):
            try:
                receiver(sender=sender, signal=self, **kwargs)
            except Exception:
                log.exception("receiver %r of signal %s failed", receiver, self.name)

    def __bool__(self) -> bool:
        return bool(self._receivers)


task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
worker_ready = Signal("worker_ready")
worker_shutdown = Signal("worker_shutdown")
