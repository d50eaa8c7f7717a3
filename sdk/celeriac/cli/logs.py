"""Logging for the long-running commands: Celeriac's own lines at the level asked for, the broker
clients' chatter (connection pools, metadata refreshes, request signing) only at ``debug``."""

from __future__ import annotations

import logging

__all__ = ["BROKER_CLIENT_LOGGERS", "configure"]

#: The loggers of the libraries the transports and backends drive.
BROKER_CLIENT_LOGGERS = (
    "kafka",
    "aiokafka",
    "kazoo",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "amqp",
    "pika",
    "aio_pika",
    "aiormq",
    "redis",
    "asyncio",
)


def configure(level: str) -> None:
    """Log at ``level`` (a name such as ``info``); broker clients log warnings and worse unless
    ``level`` is ``debug``."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    logging.basicConfig(level=numeric, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    logging.getLogger().setLevel(numeric)  # basicConfig leaves an already configured root alone
    quiet = logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
    for name in BROKER_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
