"""Pieces of Celery's reply shapes that a worker fills from its settings: Kombu's broker and
queue descriptions, settings with secrets masked, the process's memory."""

from __future__ import annotations

import os
import resource
from typing import Any
from urllib.parse import urlsplit

from ..boundary import safe_repr

_SECRET_WORDS = ("password", "secret", "key", "token", "signature", "auth")


def _censored(name: str, value: Any) -> Any:
    """A setting as ``conf`` shows it: secrets masked, URLs without passwords, JSON-safe."""
    if isinstance(value, str) and "://" in value:
        return _mask_url(value)
    if any(word in name.lower() for word in _SECRET_WORDS) and value:
        return "********"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_censored(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _censored(str(k), v) for k, v in value.items()}
    return safe_repr(value, 200)


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return parts._replace(netloc=netloc).geturl()


def _broker_info(url: Any) -> dict[str, Any]:
    """Kombu's ``Connection.info()`` keys for the first broker URL (no password)."""
    first = url[0] if isinstance(url, list | tuple) else str(url).split(";")[0]
    parts = urlsplit(first)
    if "," in parts.netloc:  # redis+cluster://a:1,b:2/: the first node
        parts = parts._replace(netloc=parts.netloc.split(",", 1)[0])
    try:
        port = parts.port
    except ValueError:
        port = None
    return {
        "hostname": parts.hostname,
        "userid": parts.username,
        "virtual_host": parts.path.lstrip("/") or "/",
        "port": port,
        "insist": False,
        "ssl": parts.scheme in ("rediss", "amqps", "rediss+cluster"),
        "transport": parts.scheme or "memory",
        "connect_timeout": 4,
        "transport_options": {},
        "login_method": None,
        "uri_prefix": None,
        "heartbeat": None,
        "failover_strategy": "round-robin",
        "alternates": [],
        "credential_provider": None,
    }


def _queue_info(name: str) -> dict[str, Any]:
    exchange = {
        "name": name,
        "type": "direct",
        "arguments": None,
        "durable": True,
        "passive": False,
        "auto_delete": False,
        "delivery_mode": None,
        "no_declare": False,
    }
    return {
        "name": name,
        "exchange": exchange,
        "routing_key": name,
        "queue_arguments": None,
        "binding_arguments": None,
        "consumer_arguments": None,
        "durable": True,
        "exclusive": False,
        "auto_delete": False,
        "no_ack": False,
        "alias": None,
        "bindings": [],
        "no_declare": None,
        "expires": None,
        "message_ttl": None,
        "max_length": None,
        "max_length_bytes": None,
        "max_priority": None,
    }


def _rss_bytes() -> int:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
