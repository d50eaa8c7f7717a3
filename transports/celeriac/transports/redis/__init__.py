"""``redis://`` and ``rediss://``: Kombu's list layout, atomic batch fetch, consumer liveness;
``sentinel://`` and ``redis+cluster://`` for Redis behind Sentinel or as a Redis Cluster."""

from .cluster import RedisClusterTransport
from .sentinel import SentinelTransport
from .transport import RedisSubscription, RedisTransport

__all__ = ["RedisClusterTransport", "RedisSubscription", "RedisTransport", "SentinelTransport"]
