"""Logging for ``celeriac worker`` and ``celeriac beat``, as Celery sets it up: the
``setup_logging`` signal lets an app configure logging itself; otherwise the root logger gets
a handler with ``worker_log_format`` (its previous handlers removed, unless
``worker_hijack_root_logger`` is False), task loggers one with ``worker_task_log_format``
(the running task's name and id on each line), the broker clients' connection chatter is only
shown from WARNING (unless ``-l debug``), and ``after_setup_logger``/
``after_setup_task_logger`` receivers may adjust. With ``worker_redirect_stdouts`` (the
default), what the process prints goes to the log at ``worker_redirect_stdouts_level``."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .. import signals
from ..task import current_request

if TYPE_CHECKING:
    from ..config import Settings

__all__ = [
    "BROKER_CLIENT_LOGGERS",
    "LoggingProxy",
    "TaskFormatter",
    "redirected_stdouts",
    "setup_logging",
]

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


class LoggingProxy:
    """A file that writes each line given to it as a log record of ``logger`` at ``level``
    (Celery's ``LoggingProxy``): ``sys.stdout``/``sys.stderr`` in a worker, so a task's
    ``print()`` is a log line."""

    mode = "w"
    name = None
    encoding = "utf-8"
    _busy = threading.local()

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self.closed = False

    def write(self, data: str) -> int:
        """Log ``data`` without its trailing newline; nothing for an empty line."""
        if getattr(self._busy, "writing", False) or self.closed:
            return 0  # a handler writing back to us (to a stream that is us): no loop
        text = str(data).rstrip("\n")
        if not text:
            return 0
        self._busy.writing = True
        try:
            self.logger.log(self.level, text)
        finally:
            self._busy.writing = False
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Stop forwarding."""
        self.closed = True

    def isatty(self) -> bool:
        """Never a terminal."""
        return False

    def fileno(self) -> int:
        """No file descriptor: code that needs one gets the error ``io`` gives."""
        raise OSError("the log is not a file")


@contextlib.contextmanager
def redirected_stdouts(conf: Settings) -> Iterator[None]:
    """Within the block, ``sys.stdout`` and ``sys.stderr`` write to the ``celeriac.redirected``
    logger at ``worker_redirect_stdouts_level``, when ``worker_redirect_stdouts`` is on (as
    Celery's worker and beat); both are put back after."""
    if not conf.worker_redirect_stdouts:
        yield
        return
    level = logging.getLevelName(str(conf.worker_redirect_stdouts_level).upper())
    proxy = LoggingProxy(logging.getLogger("celeriac.redirected"), level)
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = proxy
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
