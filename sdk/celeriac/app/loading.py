"""Finding what an app's settings name: objects by dotted path, the task class, Django's apps."""

from __future__ import annotations

import importlib
from typing import Any

from ..exceptions import ImproperlyConfigured
from ..task import Task


def _import_object(path: str) -> Any:
    """``module``, ``module:attr`` or ``module.attr``: the module, else its attribute (the
    way Celery resolves ``config_from_object`` names)."""
    if ":" not in path:
        try:
            return importlib.import_module(path)
        except ImportError:
            module_name, _, attr = path.rpartition(".")
            if not module_name:
                raise
    else:
        module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None


def _load_task_cls(task_cls: type[Task[Any, Any]] | str) -> type[Task[Any, Any]]:
    found = _import_object(task_cls) if isinstance(task_cls, str) else task_cls
    if not (isinstance(found, type) and issubclass(found, Task)):
        raise TypeError(f"task_cls={task_cls!r} is not a subclass of celeriac.Task")
    return found


def _django_app_names() -> list[str]:
    """Django's installed apps, for ``autodiscover_tasks()`` without packages."""
    try:
        from django.apps import apps
    except ImportError:
        raise ImproperlyConfigured(
            "autodiscover_tasks() without packages lists Django's installed apps, and Django "
            "is not installed; pass the packages"
        ) from None
    return [config.name for config in apps.get_app_configs()]
