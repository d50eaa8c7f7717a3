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
    #: TLS to the servers (their ``secureClientPort``), with a CA bundle (else the system's),
    #: a client certificate and key if they ask for one, and the checks kazoo can make.
    use_ssl: bool = False
    ca: str = ""
    certfile: str = ""
    keyfile: str = ""
    verify_certs: bool = True
    check_hostname: bool = True
    #: SASL instead of digest auth for the URL's user and password: ``DIGEST-MD5`` or
    #: ``PLAIN`` (needs the ``pure-sasl`` package, as kazoo does); empty: digest auth.
    sasl_mechanism: str = ""
    #: Nodes this transport creates readable and writable only by the URL's user (a digest
    #: ACL), instead of open to every client.
    creator_acl: bool = False


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
        if name in _FLAGS:
            values[name] = _flag(name, value)
            continue
        if name in _TEXT:
            values[name] = str(value)
            continue
        try:
            number = int(value) if name == "max_message_bytes" else float(value)
        except (TypeError, ValueError):
            raise TransportError(f"ZooKeeper option {name}={value!r}: not a number") from None
        if number <= 0:
            raise TransportError(f"ZooKeeper option {name}={value!r}: must be positive")
        values[name] = number
    options = ZooKeeperOptions(**values)
    if options.sasl_mechanism and options.sasl_mechanism not in _MECHANISMS:
        raise TransportError(
            f"ZooKeeper option sasl_mechanism={options.sasl_mechanism!r}: use one of "
            f"{', '.join(_MECHANISMS)}"
        )
    if (options.ca or options.certfile) and not options.use_ssl:
        raise TransportError("ZooKeeper options ca/certfile need use_ssl=true")
    return options


_FLAGS = ("use_ssl", "verify_certs", "check_hostname", "creator_acl")
_TEXT = ("ca", "certfile", "keyfile", "sasl_mechanism")
_MECHANISMS = ("DIGEST-MD5", "PLAIN")


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return text in ("1", "true", "yes", "on")
    raise TransportError(f"ZooKeeper option {name}={value!r}: expected true or false")
