"""Loggers under Celery's ``celery.utils.log`` path.

A task logger is a child of ``celeriac.task``, whose handler the worker sets up with
``worker_task_log_format`` (each line with the running task's name and id).
"""

from __future__ import annotations

import logging

__all__ = ["get_logger", "get_task_logger", "task_logger", "worker_logger"]

#: The parent of every task logger.
task_logger = logging.getLogger("celeriac.task")
#: The worker's own logger.
worker_logger = logging.getLogger("celeriac.worker")


def get_logger(name: str) -> logging.Logger:
    """A plain logger by name (Celery's ``get_logger``)."""
    return logging.getLogger(name)


def get_task_logger(name: str) -> logging.Logger:
    """A logger for a task module, whose records go through the task logger's handlers."""
    if name in ("celeriac.task", "celery.task"):
        raise RuntimeError(f"logger name {name!r} is reserved for the worker's task logger")
    logger = logging.getLogger(name)
    # Celery re-parents the module's logger under its task logger; this keeps records flowing
    # to the handlers the worker set up for tasks, whatever the module is called.
    logger.parent = task_logger
    return logger
