"""``redis://`` and ``rediss://``: Kombu's list layout, atomic batch fetch, consumer liveness."""

from .sentinel import SentinelTransport
from .transport import RedisSubscription, RedisTransport

__all__ = ["RedisSubscription", "RedisTransport", "SentinelTransport"]
