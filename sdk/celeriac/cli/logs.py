"""Logging for ``celeriac worker`` and ``celeriac beat``, as Celery sets it up: the
``setup_logging`` signal lets an app configure logging itself; otherwise the root logger gets
a handler with ``worker_log_format`` (its previous handlers removed, unless
``worker_hijack_root_logger`` is False), task loggers one with ``worker_task_log_format``
(the running task's name and id on each line), the broker clients' connection chatter is only
shown from WARNING (unless ``-l debug``), and ``after_setup_logger``/
``after_setup_task_logger`` receivers may adjust."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import signals
from ..task import current_request

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["BROKER_CLIENT_LOGGERS", "TaskFormatter", "setup_logging"]

#: Loggers of the broker and backend client libraries, whose INFO lines are connection chatter.
BROKER_CLIENT_LOGGERS = (
    "pika",
    "kazoo",
    "kafka",
    "aiokafka",
    "botocore",
    "boto3",
    "urllib3",
    "redis",
)


class TaskFormatter(logging.Formatter):
    """A formatter whose records carry ``task_name`` and ``task_id``: the running task's, or
    ``???`` outside a task (as Celery's)."""

    def format(self, record: logging.LogRecord) -> str:
        request = current_request()
        record.__dict__.setdefault("task_name", request.task or "???")
        record.__dict__.setdefault("task_id", request.id or "???")
        return super().format(record)


def setup_logging(loglevel: str, conf: Settings | None = None) -> bool:
    """Configure logging at ``loglevel`` (a name such as ``info``) with ``conf``'s logging
    settings; False when a receiver of Celery's ``setup_logging`` signal configured it
    instead (Celeriac then leaves logging alone)."""
    from ..config import Settings

    conf = conf or Settings()
    level = logging.getLevelName(loglevel.upper())
    if not isinstance(level, int):
        raise ValueError(f"loglevel: {loglevel!r} is not a logging level")
    formats = {"format": conf.worker_log_format, "colorize": False, "logfile": None}
    if signals.setup_logging:
        signals.setup_logging.send(None, loglevel=level, **formats)
        return False
    hijack = conf.worker_hijack_root_logger
    root = logging.getLogger()
    _handle(root, hijack, logging.Formatter(conf.worker_log_format, conf.worker_log_datefmt))
    root.setLevel(level)
    task_logger = logging.getLogger("celeriac.task")
    task_format = TaskFormatter(conf.worker_task_log_format, conf.worker_task_log_datefmt)
    if _handle(task_logger, hijack, task_format):
        task_logger.propagate = False  # its lines are written once, in the task format
    task_logger.setLevel(level)
    if level > logging.DEBUG:  # with -l debug, everything: a connection problem is in there
        for name in BROKER_CLIENT_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
    signals.after_setup_logger.send(None, logger=root, loglevel=level, **formats)
    formats["format"] = conf.worker_task_log_format
    signals.after_setup_task_logger.send(None, logger=task_logger, loglevel=level, **formats)
    return True


def _handle(logger: logging.Logger, hijack: bool, formatter: logging.Formatter) -> bool:
    """Give ``logger`` a stderr handler with ``formatter`` (first removing its handlers when
    ``hijack``); leave it alone when it keeps handlers of its own. True when one was added."""
    if hijack:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    if logger.handlers:
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    return True
