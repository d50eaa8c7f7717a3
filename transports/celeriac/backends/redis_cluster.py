"""``redis+cluster://`` results on a Redis Cluster (a Celeriac extension, SPEC.md §7.5).

The records and their channels are Celery's Redis layout (one key each, so any slot will do).
The chord counters are one script over five keys, so they carry the group record's name as a
hash tag (``{celery-taskset-meta-<group id>}.j``...): they share the group record's slot."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from celeriac.protocol.results import ResultRecord, group_key
from celeriac.transports.errors import TransportError
from celeriac.transports.redis.cluster import cluster_nodes

from .redis import RedisBackend

__all__ = ["RedisClusterBackend"]


class RedisClusterBackend(RedisBackend):
    """Result records on a Redis Cluster: ``redis+cluster://[:pw@]host1:port1,host2:port2/``
    (``rediss+cluster://`` for TLS), following failovers and resharding as the transport does.
    Celery has no Redis Cluster backend, so only Celeriac reads these results."""

    transient_errors: tuple[type[BaseException], ...] = (
        *RedisBackend.transient_errors,
        redis.exceptions.ClusterError,
        redis.exceptions.TryAgainError,
        redis.exceptions.ReadOnlyError,
    )
    #: A cluster's pub/sub connection is one node's: opened for each wait, as before.
    keep_pubsub = False

    def _make_client(self, url: str, options: dict[str, Any]) -> redis.Redis:
        unknown = sorted(set(options) - {"expires"})
        if unknown:
            raise TransportError(
                f"unknown Redis Cluster result backend option(s): {', '.join(unknown)}"
            )
        tls, nodes, credentials, query = cluster_nodes(url)
        if query:
            raise TransportError(
                f"redis+cluster:// result backend: URL options ({query}) are not taken here"
            )
        kwargs: dict[str, Any] = {"socket_connect_timeout": 5, "ssl": tls, **credentials}
        client = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],  # type: ignore[no-untyped-call]
            # As the transport: retried at most half a second apart for about ten seconds.
            retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 24),
            **kwargs,
        )
        return client  # type: ignore[return-value]

    @staticmethod
    def _chord_key(group_id: str, suffix: str) -> str:
        return "{" + group_key(group_id) + "}" + suffix

    async def wait_async(self, task_id: str, timeout: float | None = None) -> ResultRecord:
        # redis-py's asyncio cluster client has no Pub/Sub: the blocking wait, on a thread.
        return await asyncio.to_thread(self.wait, task_id, timeout)

    async def aclose(self) -> None:
        return None
