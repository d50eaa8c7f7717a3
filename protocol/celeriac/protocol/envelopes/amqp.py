"""The AMQP 0-9-1 envelope (SPEC.md §5.1): body bytes plus basic properties with a header table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..limits import DEFAULT_LIMITS, Limits
from ..message import TaskMessage
from ..serializers import DEFAULT_ACCEPT
from ..wire import WireMessage, decode_task, encode_task

__all__ = ["AmqpMessage", "pack", "pack_wire", "unpack", "unpack_wire"]

# Basic properties that are not message properties of ours.
_TRANSPORT_PROPERTIES = frozenset(("content_type", "content_encoding", "headers"))
#: The basic properties AMQP 0-9-1 has; nothing else fits in a basic.publish.
BASIC_PROPERTIES = frozenset(
    (
        *_TRANSPORT_PROPERTIES,
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
        "cluster_id",
    )
)


@dataclass(frozen=True, slots=True)
class AmqpMessage:
    """Body and basic properties; ``properties`` fits ``pika.BasicProperties(**properties)``."""

    body: bytes
    properties: Mapping[str, Any]


def pack_wire(wire: WireMessage) -> AmqpMessage:
    """Put a wire message into AMQP basic properties.

    Properties AMQP has no field for (a foreign client's ``correlationId`` read from a Redis
    envelope, say) are left out: relaying such a message must not fail (SPEC.md §6.2)."""
    properties: dict[str, Any] = {
        k: v
        for k, v in wire.properties.items()
        if k in BASIC_PROPERTIES and k not in _TRANSPORT_PROPERTIES
    }
    properties.update(
        content_type=wire.content_type,
        content_encoding=wire.content_encoding,
        headers=dict(wire.headers),
    )
    return AmqpMessage(body=wire.body, properties=properties)


def pack(
    message: TaskMessage, *, serializer: str | None = None, compression: str | None = None
) -> AmqpMessage:
    """Encode a task message as an AMQP message."""
    return pack_wire(encode_task(message, serializer=serializer, compression=compression))


def unpack_wire(body: bytes, properties: Mapping[str, Any]) -> WireMessage:
    """Read an AMQP body and its properties (as a mapping) into a wire message."""
    if not isinstance(properties, Mapping):
        raise ValidationError("properties", "must be a mapping")
    content_type = properties.get("content_type")
    if not isinstance(content_type, str):
        raise ValidationError("properties.content_type", "is required (a string)")
    headers = properties.get("headers") or {}
    return WireMessage(
        body=bytes(body),
        content_type=content_type,
        content_encoding=properties.get("content_encoding") or "binary",
        headers=headers,
        properties={
            k: v for k, v in properties.items() if k not in _TRANSPORT_PROPERTIES and v is not None
        },
    )


def unpack(
    body: bytes,
    properties: Mapping[str, Any],
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read an AMQP message straight into a task message."""
    return decode_task(unpack_wire(body, properties), accept=accept, limits=limits)
