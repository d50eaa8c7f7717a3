"""``zookeeper://`` transport (kazoo): Kombu's queue nodes, ephemeral claims, watched broadcasts."""

from .transport import ZooKeeperTransport

__all__ = ["ZooKeeperTransport"]
