"""Celeriac: a distributed task queue that speaks Celery's wire protocol.

The names here are Celery's, so ``from celery import ...`` becomes ``from celeriac import ...``.
"""

from pkgutil import extend_path

# The repository keeps protocol/, transports/ and sdk/ as separate source roots that all
# contribute to the one ``celeriac`` namespace; an installed wheel merges them anyway.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0.dev0"

from . import states
from .app import App, Celery, current_app, current_task, shared_task
from .canvas import (
    Signature,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    subtask,
    xmap,
    xstarmap,
)
from .result import AsyncResult, GroupResult
from .task import Task


def uuid() -> str:
    """A new task id (Celery's ``celery.uuid``)."""
    import uuid as _uuid

    return str(_uuid.uuid4())


__all__ = [
    "App",
    "AsyncResult",
    "Celery",
    "GroupResult",
    "Signature",
    "Task",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "current_task",
    "group",
    "maybe_signature",
    "shared_task",
    "signature",
    "states",
    "subtask",
    "uuid",
    "xmap",
    "xstarmap",
]
