"""Celery's ``celery.app.task`` path: the Task base class and its request Context."""

from __future__ import annotations

from ..task import Context, Task

__all__ = ["Context", "Task"]
