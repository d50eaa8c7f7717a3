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
    """Receivers connected to a named event; a receiver that raises is logged, never fatal.

    As Celery's: ``sig.connect(fn)``, ``@sig.connect``, ``@sig.connect(sender=...)`` (only
    sends from that sender reach the receiver). Receivers are held strongly, whatever
    ``weak`` says: one connected with ``weak=True`` is never dropped early.
    """

    def __init__(self, name: str, providing_args: Any = None) -> None:
        self.name = name
        self._receivers: list[tuple[Callable[..., Any], Any, Any]] = []
        self._lock = threading.Lock()

    def connect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Any = None,
    ) -> Any:
        """Add a receiver; without one, return a decorator that adds it."""
        if receiver is None:

            def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.connect(fn, sender=sender, weak=weak, dispatch_uid=dispatch_uid)
                return fn

            return decorate
        key = dispatch_uid if dispatch_uid is not None else receiver
        with self._lock:
            if not any(k == key and s is sender for _, s, k in self._receivers):
                self._receivers.append((receiver, sender, key))
        return receiver

    def disconnect(
        self,
        receiver: Callable[..., Any] | None = None,
        sender: Any = None,
        dispatch_uid: Any = None,
    ) -> None:
        """Remove a receiver (by itself or by its ``dispatch_uid``)."""
        key = dispatch_uid if dispatch_uid is not None else receiver
        with self._lock:
            self._receivers = [r for r in self._receivers if not (r[2] == key and r[1] is sender)]

    def send(self, sender: Any = None, **kwargs: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Call every receiver connected for ``sender`` (or for any sender) with ``sender`` and
        the keyword arguments; return ``(receiver, response)`` pairs, as Celery does."""
        responses: list[tuple[Callable[..., Any], Any]] = []
        for receiver, wanted, _ in list(self._receivers):
            if wanted is not None and not _matches(wanted, sender):
                continue
            try:
                responses.append((receiver, receiver(sender=sender, signal=self, **kwargs)))
            except Exception as exc:
                log.exception("receiver %r of signal %s failed", receiver, self.name)
                responses.append((receiver, exc))
        return responses

    def __bool__(self) -> bool:
        return bool(self._receivers)

    def __repr__(self) -> str:
        return f"<Signal: {self.name}>"


def _matches(wanted: Any, sender: Any) -> bool:
    """A receiver's ``sender=`` filter: the same object, or a task's name (Celery sends tasks
    and filters are often given as the task or its name)."""
    if wanted is sender or wanted == sender:
        return True
    name = getattr(sender, "name", None)
    return name is not None and (wanted == name or getattr(wanted, "name", None) == name)


task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
worker_ready = Signal("worker_ready")
worker_shutdown = Signal("worker_shutdown")
