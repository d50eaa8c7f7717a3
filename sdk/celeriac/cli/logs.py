"""Logging for ``celeriac worker`` and ``celeriac beat``, as Celery sets it up: the
``setup_logging`` signal lets an app configure logging itself; otherwise Celeriac's lines are
shown at the chosen level, the broker clients' connection chatter only at WARNING (unless
``-l debug``), and ``after_setup_logger``/``after_setup_task_logger`` let receivers adjust."""

from __future__ import annotations

import logging

from .. import signals

__all__ = ["BROKER_CLIENT_LOGGERS", "LOG_FORMAT", "setup_logging"]

LOG_FORMAT = "[%(asctime)s %(levelname)s %(name)s] %(message)s"

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


def setup_logging(loglevel: str) -> bool:
    """Configure logging at ``loglevel`` (a name such as ``info``); False when a receiver of
    Celery's ``setup_logging`` signal configured it instead (Celeriac then leaves it alone)."""
    level = logging.getLevelName(loglevel.upper())
    if not isinstance(level, int):
        raise ValueError(f"loglevel: {loglevel!r} is not a logging level")
    if signals.setup_logging:
        signals.setup_logging.send(
            None, loglevel=level, logfile=None, format=LOG_FORMAT, colorize=False
        )
        return False
    logging.basicConfig(level=level, format=LOG_FORMAT)
    if level > logging.DEBUG:  # with -l debug, everything: a connection problem is in there
        for name in BROKER_CLIENT_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
    common = {"loglevel": level, "logfile": None, "format": LOG_FORMAT, "colorize": False}
    signals.after_setup_logger.send(None, logger=logging.getLogger(), **common)
    signals.after_setup_task_logger.send(None, logger=logging.getLogger("celeriac.task"), **common)
    return True
