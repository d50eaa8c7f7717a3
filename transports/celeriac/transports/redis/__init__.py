"""``redis://`` and ``rediss://``: Kombu's list layout, atomic batch fetch, consumer liveness."""

from .transport import RedisSubscription, RedisTransport

__all__ = ["RedisSubscription", "RedisTransport"]
