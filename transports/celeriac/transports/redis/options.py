"""Transport options of ``redis://`` URLs (query string or keyword arguments) and the client."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from celeriac.protocol.envelopes.redis import DEFAULT_PRIORITY_STEPS

from ..errors import BrokerUnavailable, TransportError
from ..registry import redact_url

__all__ = ["RedisOptions", "make_client", "parse_options"]

# Connection settings handed to redis-py unchanged (Kombu accepts the same names).
_CLIENT_OPTIONS = frozenset((
    "socket_timeout", "socket_connect_timeout", "socket_keepalive", "health_check_interval",
    "client_name", "max_connections", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile",
    "ssl_keyfile", "ssl_check_hostname", "ssl_ca_path", "password", "username",
))  # fmt: skip
# Kombu options that mean nothing here (our fetch is one script, restores run on demand).
_IGNORED = frozenset((
    "polling_interval", "brpop_timeout", "unacked_restore_limit", "unacked_restore_interval",
    "unacked_restore_throttle", "queue_order_strategy", "fanout_patterns", "ack_emulation",
    "retry_on_timeout", "sep",
))  # fmt: skip
# Kombu writes CERT_REQUIRED where redis-py reads "required".
_CERT_REQS = {"CERT_NONE": "none", "CERT_OPTIONAL": "optional", "CERT_REQUIRED": "required"}


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """What a Redis transport can be told, with Kombu's names where Kombu has one."""

    #: Seconds a dead Celeriac consumer's deliveries wait before they come back.
    visibility_timeout: float = 60.0
    #: Kombu's visibility timeout: deliveries a Kombu (Celery) consumer left come back after it.
    kombu_visibility_timeout: float = 3600.0
    global_keyprefix: str = ""
    unacked_key: str = "unacked"
    unacked_index_key: str = "unacked_index"
    unacked_mutex_key: str = "unacked_mutex"
    #: Seconds the restore lock lives if its holder dies while holding it.
    unacked_mutex_expire: float = 60.0
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    #: Kombu's fanout channel prefix: True (``/<db>.``), False (none) or the prefix itself.
    fanout_prefix: bool | str = True
    #: Messages a publishing thread may have written and not yet seen acknowledged; 0 (the
    #: default): every publish waits for Redis's reply (see ``Transport.flush``).
    publish_window: int = 0


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _steps(value: Any) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    steps = tuple(sorted(int(s) for s in items))
    if not steps or steps[0] != 0 or steps[-1] > 9:
        raise ValueError("steps must start at 0 and stay within 0..9")
    return steps


def _convert(name: str, value: Any) -> Any:
    if name in ("visibility_timeout", "kombu_visibility_timeout", "unacked_mutex_expire"):
        number = float(value)
        if number <= 0:
            raise ValueError("must be positive")
        return number
    if name == "publish_window":
        window = int(value)
        if window < 0:
            raise ValueError("must be 0 or more")
        return window
    if name == "priority_steps":
        return _steps(value)
    if name == "fanout_prefix":
        if isinstance(value, str) and value.strip().lower() not in ("1", "0", "true", "false"):
            return value
        return _bool(value)
    return str(value)


def parse_options(url: str, given: Mapping[str, Any]) -> tuple[RedisOptions, str, dict[str, Any]]:
    """Split the URL's query and the keyword options into ours and redis-py's.

    Returns the options, the URL to hand to redis-py (its own query arguments kept) and extra
    keyword arguments for the redis-py client.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise TransportError(f"{redact_url(url)!r} is not a redis:// or rediss:// URL")
    ours = {f.name for f in fields(RedisOptions)}
    mine: dict[str, Any] = {}
    passed: list[tuple[str, str]] = []
    client: dict[str, Any] = {}
    merged = [*parse_qsl(parts.query), *given.items()]
    for name, value in merged:
        if name in ours:
            try:
                mine[name] = _convert(name, value)
            except (TypeError, ValueError) as exc:
                raise TransportError(f"Redis option {name}={value!r}: {exc}") from None
        elif name in _CLIENT_OPTIONS:
            value = _CERT_REQS.get(value, value) if name == "ssl_cert_reqs" else value
            if isinstance(value, str):
                passed.append((name, value))
            else:
                client[name] = value
        elif name not in _IGNORED:
            valid = sorted(ours | _CLIENT_OPTIONS)
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(valid)}"
            raise TransportError(f"unknown Redis transport option {name!r}{hint}")
    client_url = urlunsplit(parts._replace(query=urlencode(passed)))
    return RedisOptions(**mine), client_url, client


def make_client(client_url: str, extra: Mapping[str, Any]) -> redis.Redis:
    """A redis-py client that retries broken connections with a bounded, jittered backoff."""
    try:
        return redis.Redis.from_url(
            client_url,
            socket_connect_timeout=extra.get("socket_connect_timeout", 5.0),
            retry=Retry(ExponentialWithJitterBackoff(cap=2.0, base=0.1), retries=6),
            **{k: v for k, v in extra.items() if k != "socket_connect_timeout"},
        )
    except (ValueError, TypeError) as exc:
        raise BrokerUnavailable(
            f"bad Redis URL {redact_url(client_url)!r}: {exc}; write it as "
            "redis://[:password@]host:port/db (rediss:// for TLS)"
        ) from None
