"""An app's task registry (Celery's ``TaskRegistry``)."""

from __future__ import annotations

from typing import Any

from ..exceptions import NotRegistered
from ..task import Task

__all__ = ["TaskRegistry"]


class TaskRegistry(dict[str, Task[Any, Any]]):
    """An app's tasks by name (Celery's ``TaskRegistry``): a dict whose missing names raise
    ``NotRegistered`` (a KeyError)."""

    def __missing__(self, name: str) -> Task[Any, Any]:
        raise NotRegistered(name)

    def register(self, task: Task[Any, Any]) -> None:
        """Add a task object under its name."""
        self[task.name] = task

    def unregister(self, name: str | Task[Any, Any]) -> None:
        """Remove a task, by name or itself; NotRegistered if it is not here."""
        key = name if isinstance(name, str) else name.name
        if key not in self:
            raise NotRegistered(key)
        del self[key]

    def regular(self) -> dict[str, Task[Any, Any]]:
        """Every task (Celeriac has no separate periodic task type)."""
        return dict(self)

    def periodic(self) -> dict[str, Task[Any, Any]]:
        """None: periodic calls are beat entries, not a kind of task."""
        return {}
