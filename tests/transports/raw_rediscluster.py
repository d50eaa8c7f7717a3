"""Raw injection for the contract suite on a Redis Cluster: bytes pushed on the queue's list."""

from __future__ import annotations

from redis.cluster import ClusterNode, RedisCluster

from celeriac.transports.redis.cluster import RedisClusterTransport, cluster_nodes


def inject(url: str, queue: str, raw: bytes) -> None:
    """LPUSH ``raw`` on ``queue``'s list (under the queue's hash tag, as the transport names it)."""
    _, nodes, credentials, _ = cluster_nodes(url)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **credentials)
    try:
        client.lpush(RedisClusterTransport(url).keys_for(queue).ready(queue), raw)
    finally:
        client.close()
