"""``redis://`` and ``rediss://``: Kombu's list layout, atomic batch fetch, consumer liveness."""

from .transport import RedisTransport

__all__ = ["RedisTransport"]
