"""``redis+cluster://``: the Redis transport on a Redis Cluster (a Celeriac extension).

``redis+cluster://[user:password@]host1:port1,host2:port2/`` names a few of the cluster's nodes
(any of them: the client learns the rest); ``rediss+cluster://`` speaks TLS. Every key of one
queue carries the queue's hash tag (``{name}``, the ``.dlq`` suffixes dropped, so a queue and
its dead-letter queue share a slot), so each Lua script touches one slot of one master
(SPEC.md §6.3, "Redis Cluster"). A ``MOVED``/``ASK`` redirect, a failover, a server that went
away or answers ``READONLY``/``CLUSTERDOWN`` are "the topology changed": the client relearns
the slot map and the call is retried, or the caller sees ``BrokerUnavailable`` and tries again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote

import redis
import redis.exceptions as rex
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from celeriac.protocol import WireMessage
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes.redis import PRIORITY_SEP

from ..errors import BrokerUnavailable, TransportError
from ..registry import redact_url
from .keys import Keys
from .options import parse_options
from .restore import Restorer
from .scripts import PUSH
from .sentinel import _typed
from .transport import RedisTransport

__all__ = ["RedisClusterTransport", "cluster_nodes", "slot_tag"]

_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
_DLQ = ".dlq"


def slot_tag(queue: str) -> str:
    """The hash tag of ``queue``'s keys: its name without ``.dlq`` suffixes, so a queue and
    its dead-letter queues (``q.dlq``, ``q.dlq.dlq``) share one slot."""
    while queue.endswith(_DLQ) and len(queue) > len(_DLQ):
        queue = queue[: -len(_DLQ)]
    return queue


def cluster_nodes(url: str) -> tuple[bool, list[tuple[str, int]], dict[str, str], str]:
    """TLS or not, the nodes, the credentials (``username``/``password``) and the query of a
    ``redis+cluster://`` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise TransportError(f"{redact_url(url)!r} is not a redis+cluster:// URL")
    tls = _SCHEMES[scheme.lower()]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise TransportError(
            f"{redact_url(url)!r}: a Redis Cluster has database 0 only, not "
            f"{path.strip('/')!r}; write redis+cluster://host1:port1,host2:port2/"
        )
    credentials: dict[str, str] = {}
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            credentials["password"] = unquote(password)
        if user:
            credentials["username"] = unquote(user)
    nodes: list[tuple[str, int]] = []
    for one in hosts.split(","):
        one = one.strip()
        if not one:
            continue
        if one.startswith("["):  # [ipv6]:port
            host, _, port = one[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = one.rpartition(":") if ":" in one else (one, "", "")
        try:
            nodes.append((host or "localhost", int(port) if port else 6379))
        except ValueError:
            raise TransportError(
                f"{redact_url(url)!r}: bad node {one!r} (port {port!r} is not a number); write "
                "redis+cluster://host1:port1,host2:port2/"
            ) from None
    if not nodes:
        raise TransportError(
            f"{redact_url(url)!r} names no node; write redis+cluster://host1:port1,host2:port2/"
        )
    return tls, nodes, credentials, query


class _ClusterRestorer(Restorer):
    """Restores one hash tag's bookkeeping, on the master that holds it."""

    pipelined_scripts = False

    def now(self) -> float:
        node = self.client.get_node_from_key(self.keys.unacked)
        seconds, micros = self.client.execute_command("TIME", target_nodes=node)
        return float(seconds) + int(micros) / 1e6


class RedisClusterTransport(RedisTransport):
    """The Redis transport with every queue's keys in one hash slot (SPEC.md §6.3).

    Takes the Redis transport's options, but not ``publish_window`` (a publish is one script
    call on the queue's master). Kombu has no Redis Cluster transport: only Celeriac clients
    and workers share these queues.
    """

    schemes: ClassVar[tuple[str, ...]] = ("redis+cluster", "rediss+cluster")
    topology_errors: ClassVar[tuple[type[Exception], ...]] = (
        redis.ConnectionError,
        redis.TimeoutError,
        rex.ClusterError,  # CLUSTERDOWN, MASTERDOWN
        rex.AskError,  # MOVED and ASK that outlived the client's own retries
        rex.TryAgainError,
        rex.ReadOnlyError,
        rex.SlotNotCoveredError,
        rex.RedisClusterUnreachableError,
    )
    resubscribes: ClassVar[bool] = True

    def __init__(self, url: str, **options: Any) -> None:
        tls, self.nodes, credentials, query = cluster_nodes(url)
        base = ("rediss" if tls else "redis") + "://localhost/0" + (f"?{query}" if query else "")
        settings, client_url, extra = parse_options(base, options)
        if settings.publish_window:
            raise TransportError(
                "Redis option publish_window: not available on redis+cluster:// (each publish "
                "is one script call on the queue's master); leave it at 0"
            )
        for name, value in parse_qsl(client_url.partition("?")[2]):
            extra[name] = _typed(name, value)
        self.url = url
        self.options = options
        self.settings = settings
        self._client_extra = {**extra, **credentials}
        if tls:
            self._client_extra["ssl"] = True
        self._client_url = base
        self.address = "Redis Cluster " + ",".join(f"{h}:{p}" for h, p in self.nodes)
        # Unscoped names: fanout channels (Pub/Sub is cluster-wide) and Kombu-style bindings.
        self.keys = Keys(settings, 0)
        self._scoped: dict[str, Keys] = {}
        self._restorers: dict[str, Restorer] = {}
        self.client = None

    def topology_changed(self, exc: Exception) -> None:
        """After ``READONLY`` (a master demoted, which redis-py does not act on), relearn the
        slot map; redirects, lost nodes and ``CLUSTERDOWN`` make redis-py relearn it itself."""
        if isinstance(exc, redis.ReadOnlyError) and self.client is not None:
            with contextlib.suppress(redis.RedisError, rex.RedisClusterException):
                self.client.nodes_manager.initialize()  # type: ignore[attr-defined]

    def keys_for(self, queue: str) -> Keys:
        tag = slot_tag(queue)
        keys = self._scoped.get(tag)
        if keys is None:
            if not tag or "{" in tag or "}" in tag:
                raise TransportError(
                    f"queue name {queue!r}: on redis+cluster:// a queue name must be non-empty "
                    "and hold no '{' or '}' (its keys' hash tag is the name)"
                )
            prefix = f"{self.settings.global_keyprefix}{{{tag}}}"
            scoped = dataclasses.replace(self.settings, global_keyprefix=prefix)
            keys = self._scoped[tag] = Keys(scoped, 0)
        return keys

    def restorer_for(self, keys: Keys) -> Restorer:
        restorer = self._restorers.get(keys.prefix)
        if restorer is None:
            restorer = self._restorers[keys.prefix] = _ClusterRestorer(
                self.connected(), keys, self.settings
            )
        return restorer

    def _attach(self, client: redis.Redis) -> None:
        # Each publish is one script call on the queue's master (no Sender: its one connection
        # is one node's); restorers are made per hash tag (restorer_for).
        self.push_script = client.register_script(PUSH)
        # Broadcasts are best effort (SPEC.md §6.3): tried once on any node, never retried, so
        # a dead node (where redis-py sends a keyless PUBLISH) cannot stall the caller.
        self._broadcaster = self._cluster(Retry(NoBackoff(), 0))

    def _cluster(self, retry: Retry) -> RedisCluster:
        kwargs = {"socket_connect_timeout": 5.0, **self._client_extra}
        try:
            return RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in self.nodes],  # type: ignore[no-untyped-call]
                retry=retry,
                **kwargs,
            )
        except (TypeError, ValueError) as exc:
            raise TransportError(f"{self.address}: bad client option ({exc})") from None

    def _make_client(self) -> redis.Redis:
        # A failover takes the node timeout and a vote (a few seconds): retry often enough to
        # be back within half a second of the new master, for about ten seconds in all.
        return self._cluster(Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 24))  # type: ignore[return-value]

    def _check_reachable(self) -> None:
        """One try: some named node must answer and tell us the slot map."""
        try:
            probe = self._cluster(Retry(NoBackoff(), 0))
        except redis.AuthenticationError as exc:
            raise BrokerUnavailable(
                f"{self.address} refused the credentials of {redact_url(self.url)!r} ({exc}); "
                "check the password (and user name)"
            ) from None
        except (redis.RedisError, rex.RedisClusterException) as exc:
            raise BrokerUnavailable(
                f"{self.address} ({redact_url(self.url)!r}): no node answered with the "
                f"cluster's slot map ({exc}); is the cluster up, and are these its nodes?"
            ) from None
        probe.close()

    def _push(self, lists: dict[str, list[bytes]], wake: str, messages: int) -> None:
        counts = [len(envelopes) for envelopes in lists.values()]
        envelopes = [e for batch in lists.values() for e in batch]
        self.push_script(keys=list(lists), args=[wake, *counts, *envelopes])

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        """Kombu's fanout channel, as on one server; Pub/Sub reaches every node of a cluster, so
        it is published on one node chosen at random."""
        key = str(message.headers.get("routing_key") or "")
        channel = self.keys.fanout(exchange) + (f"/{key}" if key else "")
        envelope = json_envelope.pack_wire(message, exchange=exchange, routing_key=key)
        self.connected()
        with self.errors(f"broadcast to {exchange!r}"):
            self._broadcaster.execute_command(  # type: ignore[no-untyped-call]
                "PUBLISH", channel, envelope, target_nodes=RedisCluster.RANDOM
            )

    def flush(self) -> None:
        """Every publish is confirmed before it returns: nothing to wait for."""

    def set_publish_window(self, window: int) -> int:
        """No window: every publish waits for its reply (the base transport's behaviour)."""
        return 0

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self._broadcaster.close()
            self.client = None

    def declare_reply_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        with self.errors(f"declare reply queue {queue!r}"):
            member = PRIORITY_SEP.join((routing_key, "", queue))
            self.connected().sadd(self.keys_for(queue).binding(exchange), member)
