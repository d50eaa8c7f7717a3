"""``amqp://`` and ``amqps://``: RabbitMQ through pika, declared as Celery declares it."""

from . import pika_floats  # noqa: F401 - floats in header tables, as Celery writes them
from .transport import AmqpTransport

__all__ = ["AmqpTransport"]
