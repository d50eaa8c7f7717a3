"""Options of ``kafka://`` URLs (query string or keyword arguments)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import TransportError
from ..registry import redact_url

__all__ = ["KafkaOptions", "parse_options", "security_config"]

# Options other transports take that mean nothing here: a dead consumer's records come back
# when the group notices it is gone (session_timeout_ms), not after a visibility timeout.
_IGNORED = frozenset(("visibility_timeout",))


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    """What a Kafka transport can be told."""

    #: Partitions of each queue topic created by declare_queue.
    partitions: int = 4
    replication_factor: int = 1
    #: How long the group waits for a silent consumer before its partitions move elsewhere.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    #: Longest pause between fetch calls before a consumer is dropped from its group.
    max_poll_interval_ms: int = 300_000
    request_timeout_ms: int = 30_000
    #: How long a fetch request waits on the broker for new records.
    fetch_max_wait_ms: int = 100
    #: Largest record the producer sends (the broker's message.max.bytes, 1 MiB by default).
    max_message_bytes: int = 1_048_576
    #: Delayed records a consumer keeps in memory, per queue, before it stops reading more.
    delay_buffer: int = 10_000
    #: Seconds connect() waits for the broker to answer.
    connect_timeout: float = 10.0
    client_id: str = "celeriac"
    #: Verify each fetched batch's CRC-32C. Without the ``crc32c`` package kafka-python computes
    #: it in pure Python, which bounds consuming to a few MB/s.
    check_crcs: bool = True
    #: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; empty: SASL when the URL holds a user name
    #: (``kafka://user:password@host:9092``), TLS when a ``ssl_*`` file is given.
    security_protocol: str = ""
    #: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with SASL).
    sasl_mechanism: str = "PLAIN"
    #: CA bundle that signs the brokers' certificates (else the system's), and a client
    #: certificate and key for brokers that ask for one.
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    #: The idempotent producer: a publish retried after a lost reply is written once.
    enable_idempotence: bool = True


_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TEXT = ("client_id", "ssl_cafile", "ssl_certfile", "ssl_keyfile")


def _convert(name: str, value: Any) -> Any:
    if name in _TEXT:
        return str(value)
    if name in ("security_protocol", "sasl_mechanism"):
        allowed = _PROTOCOLS if name == "security_protocol" else _MECHANISMS
        text = str(value).upper()
        if text not in allowed:
            raise ValueError(f"use one of {', '.join(allowed)}")
        return text
    if name in ("check_crcs", "ssl_check_hostname", "enable_idempotence"):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if name == "connect_timeout":
        number: float = float(value)
    else:
        number = int(value)
    if number <= 0:
        raise ValueError("must be positive")
    return number


def parse_options(url: str, given: Mapping[str, Any]) -> tuple[KafkaOptions, list[str]]:
    """The options and the bootstrap servers (``host:port``) of a ``kafka://`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "kafka":
        raise TransportError(f"{redact_url(url)!r} is not a kafka:// URL")
    netloc = parts.netloc.rpartition("@")[2]
    servers = [s.strip() for s in netloc.split(",") if s.strip()]
    if not servers:
        raise TransportError(
            f"{redact_url(url)!r} names no broker; write it as kafka://host:port[,host:port]"
        )
    servers = [s if ":" in s else f"{s}:9092" for s in servers]
    ours = {f.name for f in fields(KafkaOptions)}
    mine: dict[str, Any] = {}
    for name, value in [*parse_qsl(parts.query), *given.items()]:
        if name in _IGNORED:
            continue
        if name not in ours:
            close = difflib.get_close_matches(name, sorted(ours), n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(sorted(ours))}"
            )
            raise TransportError(f"unknown Kafka transport option {name!r}{hint}")
        try:
            mine[name] = _convert(name, value)
        except (TypeError, ValueError) as exc:
            raise TransportError(f"Kafka option {name}={value!r}: {exc}") from None
    options = KafkaOptions(**mine)
    if options.heartbeat_interval_ms * 3 > options.session_timeout_ms:
        raise TransportError(
            f"Kafka option heartbeat_interval_ms={options.heartbeat_interval_ms} must be at most "
            f"a third of session_timeout_ms={options.session_timeout_ms}"
        )
    return options, servers


def security_config(url: str, options: KafkaOptions) -> dict[str, Any]:
    """kafka-python's TLS and SASL settings: the user name and password come from the URL."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else ""
    tls = bool(options.ssl_cafile or options.ssl_certfile)
    protocol = options.security_protocol or (
        ("SASL_SSL" if tls else "SASL_PLAINTEXT") if user else ("SSL" if tls else "PLAINTEXT")
    )
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        if not user:
            raise TransportError(
                f"Kafka security_protocol={protocol} needs a user name and password in the URL: "
                "kafka://user:password@host:9092"
            )
        config |= {
            "sasl_mechanism": options.sasl_mechanism,
            "sasl_plain_username": user,
            "sasl_plain_password": unquote(parts.password or ""),
        }
    elif user:
        raise TransportError(
            f"the Kafka URL has a user name but security_protocol={protocol} sends none; "
            "use SASL_PLAINTEXT or SASL_SSL"
        )
    if protocol.endswith("SSL"):
        config["ssl_check_hostname"] = options.ssl_check_hostname
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(options, name):
                config[name] = getattr(options, name)
    elif tls:
        raise TransportError(f"Kafka ssl_* files given but security_protocol={protocol} is plain")
    return config
