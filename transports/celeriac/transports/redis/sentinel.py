"""``sentinel://``: Redis behind Sentinel, found and followed through failovers (Kombu's URLs).

``sentinel://:password@s1:26379/0;sentinel://s2:26379;sentinel://s3:26379`` names the sentinels
(the password and database, from the first URL that has them, are the Redis master's); the
transport options name the master (``master_name``, required) and may hold ``sentinel_kwargs``
(keyword arguments for the connections to the sentinels, e.g. their own password) and
``min_other_sentinels``, as in Kombu. Every new connection asks the sentinels where the master
is, so after a failover the next call reaches the new one; a server that answers
``READONLY`` (an old master made a replica) is treated the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelManagedConnection

from ..errors import BrokerUnavailable, TransportError
from ..failover import split_urls
from ..registry import redact_url
from .keys import Keys
from .options import parse_options
from .transport import RedisTransport

__all__ = ["SentinelTransport", "master_client", "sentinel_hosts"]

#: Options read here (Kombu's names); every other option is the Redis transport's.
_SENTINEL_OPTIONS = ("master_name", "sentinel_kwargs", "min_other_sentinels")


class _Rediscovering(SentinelManagedConnection):
    """Asks the sentinels where the master is every time it opens its socket.

    redis-py's own class asks only for a connection taken from the pool; when a command's
    retry reopens a broken connection it dials the old address again, so a worker kept
    retrying a dead master for its whole retry budget while the new one was up.
    """

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        if self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        # One attempt per address: the retry around this call asks the sentinels again.
        super().connect_check_health(check_health=check_health, retry_socket_connect=False)


class _RediscoveringTLS(_Rediscovering, SSLConnection):
    """The same over TLS."""


def master_client(sentinel: Sentinel, master_name: str, **kwargs: Any) -> redis.Redis:
    """A client of ``master_name``'s master that follows it through failovers."""
    tls = bool(kwargs.pop("ssl", False) or sentinel.connection_kwargs.get("ssl"))
    cls = _RediscoveringTLS if tls else _Rediscovering
    client: redis.Redis = sentinel.master_for(master_name, connection_class=cls, **kwargs)
    return client


def _typed(name: str, value: str) -> Any:
    """A redis-py connection option given as text, as the type redis-py wants it."""
    keepalive = name == "socket_keepalive"
    if (name.startswith("socket_") and not keepalive) or name == "health_check_interval":
        return float(value)
    if name == "max_connections":
        return int(value)
    if name in ("socket_keepalive", "ssl_check_hostname"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value


def sentinel_hosts(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The sentinels' addresses of a ``;``-separated ``sentinel://`` list, and the master's
    connection settings (password, user name, database) from the first URL that has them."""
    hosts: list[tuple[str, int]] = []
    master: dict[str, Any] = {}
    for one in split_urls(url):
        parts = urlsplit(one)
        if parts.scheme != "sentinel":
            raise TransportError(f"{redact_url(one)!r} is not a sentinel:// URL")
        try:
            hosts.append((parts.hostname or "localhost", parts.port or 26379))
            db = parts.path.strip("/")
            if db and "db" not in master:
                master["db"] = int(db)
        except ValueError as exc:
            raise TransportError(
                f"bad Sentinel URL {redact_url(one)!r} ({exc}); write it as "
                "sentinel://[:password@]host:port/db"
            ) from None
        if parts.password and "password" not in master:
            master["password"] = unquote(parts.password)
            if parts.username:
                master["username"] = unquote(parts.username)
    return hosts, master


class SentinelTransport(RedisTransport):
    """The Redis transport on whichever server the sentinels name as ``master_name``'s master."""

    schemes: ClassVar[tuple[str, ...]] = ("sentinel",)

    def __init__(self, url: str, **options: Any) -> None:
        own = {k: options.pop(k) for k in _SENTINEL_OPTIONS if k in options}
        master_name = own.get("master_name")
        if not master_name or not isinstance(master_name, str):
            raise TransportError(
                "sentinel:// needs the transport option master_name (the name the sentinels "
                "monitor the master by), e.g. broker_transport_options={'master_name': 'mymaster'}"
            )
        kwargs = own.get("sentinel_kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise TransportError(f"sentinel_kwargs must be a dict, not {type(kwargs).__name__}")
        try:
            self.min_other_sentinels = int(own.get("min_other_sentinels", 0))
        except (TypeError, ValueError):
            raise TransportError(
                f"min_other_sentinels={own['min_other_sentinels']!r}: expected a number"
            ) from None
        self.hosts, self.master_kwargs = sentinel_hosts(url)
        self.master_name = master_name
        self.sentinel_kwargs = dict(kwargs)
        # The Redis transport's own options, parsed as for a redis:// URL of the same database.
        db = self.master_kwargs.get("db", 0)
        query = urlsplit(url.split(";", 1)[0]).query
        base = f"redis://localhost/{db}" + (f"?{query}" if query else "")
        settings, client_url, extra = parse_options(base, options)
        for name, value in parse_qsl(urlsplit(client_url).query):
            extra[name] = _typed(name, value)
        if any(name.startswith("ssl_") for name in extra):
            extra["ssl"] = True  # TLS to the master; sentinel_kwargs say it for the sentinels
        self.url = url
        self.options = options
        self.settings, self._client_extra = settings, extra
        # A redis:// URL of the sentinel query's client options, for redis-py's own checks.
        self._client_url = base
        self.address = f"master {master_name!r} of sentinels " + ",".join(
            f"{h}:{p}" for h, p in self.hosts
        )
        self.keys = Keys(self.settings, db)
        self.client = None

    def _sentinel(self) -> Sentinel:
        connection = {
            "socket_connect_timeout": self._client_extra.get("socket_connect_timeout", 5.0),
            **{k: v for k, v in self._client_extra.items() if k != "socket_connect_timeout"},
            **self.master_kwargs,
        }
        sentinel_kwargs = {"socket_connect_timeout": connection["socket_connect_timeout"]}
        sentinel_kwargs |= self.sentinel_kwargs
        return Sentinel(
            self.hosts,
            min_other_sentinels=self.min_other_sentinels,
            sentinel_kwargs=sentinel_kwargs,
            **connection,
        )

    def _make_client(self) -> redis.Redis:
        # A failover takes a few seconds (down-after, vote, promotion): retry often enough to
        # be back within half a second of the new master, for about ten seconds in all.
        return master_client(
            self._sentinel(),
            self.master_name,
            retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=24),
        )

    def _check_reachable(self) -> None:
        """The sentinels must name a master, and it must answer."""
        sentinel = self._sentinel()
        try:
            host, port = sentinel.discover_master(self.master_name)
        except MasterNotFoundError as exc:
            raise BrokerUnavailable(
                f"no sentinel of {', '.join(f'{h}:{p}' for h, p in self.hosts)} named a master "
                f"for {self.master_name!r} ({exc}); are the sentinels up, is master_name right, "
                "and do sentinel_kwargs hold the sentinels' password if they need one?"
            ) from None
        probe = sentinel.master_for(
            self.master_name, retry=Retry(ExponentialWithJitterBackoff(), 0)
        )
        try:
            probe.ping()
        except redis.AuthenticationError as exc:
            raise BrokerUnavailable(
                f"Redis master {host}:{port} of {self.master_name!r} refused the credentials of "
                f"{redact_url(self.url)!r} ({exc}); check the password in the URL"
            ) from None
        except redis.RedisError as exc:
            raise BrokerUnavailable(
                f"Redis master {host}:{port} of {self.master_name!r} (named by the sentinels) "
                f"does not answer ({exc})"
            ) from None
        finally:
            probe.close()
