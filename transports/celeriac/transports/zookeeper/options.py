"""Transport options of ``zookeeper://`` URLs, from the query string or keyword arguments."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import TransportError

__all__ = ["JUTE_MAXBUFFER", "MAX_NODE_BYTES", "ZooKeeperOptions", "parse_options"]

#: The server's default ``jute.maxbuffer`` (0xfffff): the most one request may carry.
JUTE_MAXBUFFER = 0xFFFFF
#: Largest node data published by default: jute.maxbuffer less room for the request's path.
MAX_NODE_BYTES = JUTE_MAXBUFFER - 4096
# Options other transports take that mean nothing here: a claim lasts as long as its session,
# and consumers are woken by watches instead of polling.
_IGNORED = frozenset(("visibility_timeout", "polling_interval"))


@dataclass(frozen=True, slots=True)
class ZooKeeperOptions:
    """What a ZooKeeper transport can be told."""

    #: Seconds connect() waits for a server to answer.
    connect_timeout: float = 5.0
    #: Seconds after which the session of a dead consumer ends and its items come back
    #: (the server clamps it to 2..20 ticks).
    session_timeout: float = 10.0
    #: Seconds a call keeps retrying while the server is away (a restart, a failover).
    op_timeout: float = 30.0
    #: Largest node data; raise it only with the server's (and every client's) jute.maxbuffer.
    max_message_bytes: int = MAX_NODE_BYTES


def parse_options(url: str, given: Mapping[str, Any]) -> ZooKeeperOptions:
    """The options in ``url``'s query string and ``given`` (which win); unknown ones are named."""
    known = {f.name: f for f in fields(ZooKeeperOptions)}
    values: dict[str, Any] = {}
    for name, value in [*parse_qsl(urlsplit(url).query), *given.items()]:
        if name in _IGNORED:
            continue
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(known)}"
            raise TransportError(f"unknown ZooKeeper transport option {name!r}; {hint}")
        try:
            number = int(value) if name == "max_message_bytes" else float(value)
        except (TypeError, ValueError):
            raise TransportError(f"ZooKeeper option {name}={value!r}: not a number") from None
        if number <= 0:
            raise TransportError(f"ZooKeeper option {name}={value!r}: must be positive")
        values[name] = number
    return ZooKeeperOptions(**values)
