"""Signals with Celery's names and arguments (``celery.signals``): every one of Celery's can be
imported and connected to. Those Celeriac does not send yet say so, once, when a receiver is
connected (``UnsentSignal``), instead of the receiver silently never being called."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "Signal",
    "UnsentSignal",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "beat_embedded_init",
    "beat_init",
    "before_task_publish",
    "celeryd_after_setup",
    "celeryd_init",
    "eventlet_pool_apply",
    "eventlet_pool_postshutdown",
    "eventlet_pool_preshutdown",
    "eventlet_pool_started",
    "heartbeat_sent",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_internal_error",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_sent",
    "task_success",
    "task_unknown",
    "user_preload_options",
    "worker_before_create_process",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]

log = logging.getLogger("celeriac.signals")


class UnsentSignal(UserWarning):
    """A receiver was connected to a signal that Celeriac does not send."""


class Signal:
    """Receivers connected to a named event; a receiver that raises is logged, never fatal.

    As Celery's: ``sig.connect(fn)``, ``@sig.connect``, ``@sig.connect(sender=...)`` (only
    sends from that sender reach the receiver). Receivers are held strongly, whatever
    ``weak`` says: one connected with ``weak=True`` is never dropped early.
    """

    def __init__(self, name: str, providing_args: Any = None, sent: str | None = None) -> None:
        self.name = name
        #: Why no receiver will be called, for a signal Celeriac does not send (else None).
        self.unsent = sent
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
        if self.unsent:
            warnings.warn(f"signal {self.name}: {self.unsent}", UnsentSignal, stacklevel=2)
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


# -- sent by Celeriac ---------------------------------------------------------------------
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_failure = Signal("task_failure")
task_retry = Signal("task_retry")
task_revoked = Signal("task_revoked")
task_unknown = Signal("task_unknown")
task_internal_error = Signal("task_internal_error")
task_received = Signal("task_received")
task_rejected = Signal("task_rejected")
worker_before_create_process = Signal("worker_before_create_process")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
#: Sent with each worker-heartbeat event, so only by a worker sending events (-E).
heartbeat_sent = Signal("heartbeat_sent")
worker_ready = Signal("worker_ready")
worker_shutdown = Signal("worker_shutdown")
before_task_publish = Signal("before_task_publish")
after_task_publish = Signal("after_task_publish")
import_modules = Signal("import_modules")
# sent by ``celeriac worker`` and ``celeriac beat`` (the command line), as Celery's commands do
celeryd_init = Signal("celeryd_init")
celeryd_after_setup = Signal("celeryd_after_setup")
worker_init = Signal("worker_init")
worker_shutting_down = Signal("worker_shutting_down")
setup_logging = Signal("setup_logging")
after_setup_logger = Signal("after_setup_logger")
after_setup_task_logger = Signal("after_setup_task_logger")
beat_init = Signal("beat_init")
beat_embedded_init = Signal("beat_embedded_init")

# -- not sent yet: connecting warns --------------------------------------------------------
_NOT_YET = "Celeriac does not send this signal yet; receivers connected to it are not called"
task_sent = Signal("task_sent", sent=_NOT_YET)
user_preload_options = Signal("user_preload_options", sent=_NOT_YET)
_NO_EVENTLET = "Celeriac has no eventlet pool, so this signal is never sent"
eventlet_pool_started = Signal("eventlet_pool_started", sent=_NO_EVENTLET)
eventlet_pool_preshutdown = Signal("eventlet_pool_preshutdown", sent=_NO_EVENTLET)
eventlet_pool_postshutdown = Signal("eventlet_pool_postshutdown", sent=_NO_EVENTLET)
eventlet_pool_apply = Signal("eventlet_pool_apply", sent=_NO_EVENTLET)
