"""Kombu's JSON envelope (SPEC.md §5.2): one JSON object holding body, headers and properties.

Redis list entries, SQS bodies (base64 of it), ZooKeeper nodes, Kafka record values and SQLite
rows all carry this same object, so Celery's virtual transports and ours read each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .. import base64_codec
from ..errors import ContentDisallowed, DecodeError, LimitExceeded, ValidationError
from ..ids import new_id
from ..limits import DEFAULT_LIMITS, Limits
from ..message import TaskMessage
from ..serializers import DEFAULT_ACCEPT
from ..wire import WireMessage, decode_task, encode_task

__all__ = ["EnvelopeInfo", "pack", "pack_wire", "unpack", "unpack_consumed", "unpack_wire"]

# Envelope bookkeeping that lives among the properties but is not a message property.
_BOOKKEEPING = frozenset(("delivery_info", "body_encoding", "delivery_tag"))
_loads = orjson.loads
_b64decode = base64_codec.decode


@dataclass(frozen=True, slots=True)
class EnvelopeInfo:
    """Where an envelope was routed and how the transport tracks it."""

    exchange: str = ""
    routing_key: str = ""
    delivery_tag: str | None = None
    redelivered: bool = False


def pack_wire(
    wire: WireMessage,
    *,
    exchange: str = "",
    routing_key: str = "celery",
    delivery_tag: str | None = None,
    body_encoding: str = "base64",
) -> bytes:
    """Put a wire message in the JSON envelope; return the envelope's UTF-8 bytes."""
    if body_encoding == "base64":
        body: str = base64_codec.encode(wire.body)
    elif body_encoding in ("utf-8", "utf8"):
        body = wire.body.decode("utf-8")
    else:
        raise ValidationError(
            "properties.body_encoding", f"unknown body encoding {body_encoding!r}"
        )
    properties: dict[str, Any] = dict(wire.properties)
    properties.setdefault("priority", 0)
    properties["delivery_info"] = {"exchange": exchange, "routing_key": routing_key}
    properties["body_encoding"] = body_encoding
    properties["delivery_tag"] = delivery_tag or new_id()
    envelope = {
        "body": body,
        "content-encoding": wire.content_encoding,
        "content-type": wire.content_type,
        "headers": wire.headers,
        "properties": properties,
    }
    try:
        return orjson.dumps(envelope, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise ValidationError("headers", f"cannot be written as JSON: {exc}") from None


def pack(
    message: TaskMessage,
    *,
    exchange: str = "",
    routing_key: str = "celery",
    delivery_tag: str | None = None,
    serializer: str | None = None,
    compression: str | None = None,
) -> bytes:
    """Encode a task message and put it in the JSON envelope."""
    wire = encode_task(message, serializer=serializer, compression=compression)
    return pack_wire(wire, exchange=exchange, routing_key=routing_key, delivery_tag=delivery_tag)


def _field(env: Mapping[str, Any], key: str, kind: type, path: str = "envelope") -> Any:
    value = env.get(key)
    if not isinstance(value, kind):
        found = "missing" if value is None else f"a {type(value).__name__}"
        raise ValidationError(f"{path}.{key}", f"must be a {kind.__name__}, found {found}")
    return value


def _read(data: bytes | str, limits: Limits) -> tuple[WireMessage, Any, Any]:
    """The wire message of an envelope, with its ``delivery_info`` and ``delivery_tag`` as
    found (any JSON value, or None)."""
    if len(data) > limits.max_message_bytes:
        raise LimitExceeded("envelope", f"larger than {limits.max_message_bytes} bytes")
    try:
        env = _loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("envelope", f"not a JSON envelope: {exc}") from None
    # The shape every Kombu and Celeriac producer writes, checked in one go (this runs for each
    # message consumed). Anything else, and a body that is not base64, takes the checks field
    # by field in _read_checked, which decides what is refused and names the field.
    if type(env) is dict:
        properties = env.get("properties")
        headers = env.get("headers")
        body = env.get("body")
        content_type = env.get("content-type")
        if (
            type(properties) is dict
            and type(headers) is dict
            and type(body) is str
            and type(content_type) is str
            and properties.get("body_encoding") == "base64"
        ):
            try:
                raw = _b64decode(body)
            except ValueError:
                return _read_checked(env)
            # The parsed dict is ours alone: drop the bookkeeping from it rather than copy it.
            del properties["body_encoding"]
            info = properties.pop("delivery_info", None)
            tag = properties.pop("delivery_tag", None)
            encoding = env.get("content-encoding") or "utf-8"
            return WireMessage(raw, content_type, encoding, headers, properties), info, tag
    return _read_checked(env)


def _read_checked(env: Any) -> tuple[WireMessage, Any, Any]:
    if not isinstance(env, dict):
        raise ValidationError("envelope", f"must be a JSON object, not {type(env).__name__}")
    properties = env.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise ValidationError("envelope.properties", "must be a JSON object")
    headers = env.get("headers")
    if headers is None:
        headers = {}
    elif not isinstance(headers, dict):
        raise ValidationError("envelope.headers", "must be a JSON object")
    body = _field(env, "body", str)
    encoding = properties.get("body_encoding")
    if encoding == "base64":
        try:
            raw = _b64decode(body)
        except ValueError as exc:
            raise DecodeError("envelope.body", f"invalid base64: {exc}") from None
    elif encoding is None or (isinstance(encoding, str) and encoding.lower() in ("utf-8", "utf8")):
        # Kombu compares the encoding lowered (virtual/base.py decode_body): UTF-8 is utf-8.
        raw = body.encode("utf-8")
    else:
        raise ValidationError(
            "envelope.properties.body_encoding", f"unknown body encoding {encoding!r}"
        )
    content_type = env.get("content-type")
    if not isinstance(content_type, str):
        # No content type means raw bytes (Kombu's application/data): never a task.
        raise ContentDisallowed("envelope.content-type", "missing: raw data is not a task message")
    wire = WireMessage(
        body=raw,
        content_type=content_type,
        content_encoding=env.get("content-encoding") or "utf-8",
        headers=headers,
        properties={k: v for k, v in properties.items() if k not in _BOOKKEEPING},
    )
    return wire, properties.get("delivery_info"), properties.get("delivery_tag")


def unpack_wire(
    data: bytes | str, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, EnvelopeInfo]:
    """Read the JSON envelope into a wire message and its routing information."""
    wire, info, tag = _read(data, limits)
    if not isinstance(info, dict):
        info = {}
    exchange = info.get("exchange")
    routing_key = info.get("routing_key")
    return wire, EnvelopeInfo(
        exchange=exchange if isinstance(exchange, str) else "",
        routing_key=routing_key if isinstance(routing_key, str) else "",
        delivery_tag=tag if isinstance(tag, str) else None,
        redelivered=bool(wire.headers.get("redelivered") or info.get("redelivered")),
    )


def unpack_consumed(
    data: bytes | str, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, bool]:
    """What a consumer needs of an envelope: its wire message, and whether the envelope says it
    was delivered before. Refuses exactly what :func:`unpack_wire` refuses."""
    wire, info, _ = _read(data, limits)
    if wire.headers.get("redelivered"):
        return wire, True
    return wire, type(info) is dict and bool(info.get("redelivered"))


def unpack(
    data: bytes | str,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read a JSON envelope straight into a task message."""
    wire, _ = unpack_wire(data, limits=limits)
    return decode_task(wire, accept=accept, limits=limits)
