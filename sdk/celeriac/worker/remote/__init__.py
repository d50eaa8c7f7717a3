"""The worker's side of remote control (SPEC.md §10): Celery's commands and reply shapes, so
``celery inspect`` and ``celery control`` work against a Celeriac worker and ``celeriac inspect``
against a Celery one.

A command that fails, is unknown, or has bad arguments gets ``{"error": "..."}``; the worker goes
on.

Each part lives in a module of this package: ``panel`` (``ControlPanel``: dispatch and
replies), ``inspection`` and ``control`` (the commands), ``controlled`` (what a command may see
of the worker, ``CommandError``) and ``replies`` (Kombu's shapes that replies embed).
"""

from .controlled import CommandError as CommandError
from .controlled import Controlled as Controlled
from .controlled import Handler as Handler
from .panel import ControlPanel
from .replies import _broker_info as _broker_info

__all__ = ["ControlPanel"]
