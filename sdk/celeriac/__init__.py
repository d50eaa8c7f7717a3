"""Celeriac: a distributed task queue that speaks Celery's wire protocol."""

from pkgutil import extend_path

# The repository keeps protocol/, transports/ and sdk/ as separate source roots that all
# contribute to the one ``celeriac`` namespace; an installed wheel merges them anyway.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0.dev0"

from .app import App, current_app
from .canvas import Signature, chain, chord, group, signature
from .result import AsyncResult, GroupResult
from .task import Task

__all__ = [
    "App",
    "AsyncResult",
    "GroupResult",
    "Signature",
    "Task",
    "chain",
    "chord",
    "current_app",
    "group",
    "signature",
]
