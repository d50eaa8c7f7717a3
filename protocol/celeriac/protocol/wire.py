"""The broker-neutral form of a message: serialized body, content type, headers, properties.

Every envelope (AMQP, the Redis/SQS/Kafka/ZooKeeper/SQLite JSON envelope) carries exactly these
five things; :func:`encode_task` and :func:`decode_task` convert them to and from a
:class:`~celeriac.protocol.message.TaskMessage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import Any

from . import compression as _compression
from . import serializers
from .errors import LimitExceeded, ValidationError
from .limits import DEFAULT_LIMITS, Limits
from .message import TaskMessage
from .v1 import is_v1_body, lift_v1
from .validate import parse_body, parse_headers, parse_properties

__all__ = ["WireMessage", "decode_body", "decode_task", "encode_task"]


@dataclass(frozen=True, slots=True)
class WireMessage:
    """A message as a broker carries it, before any envelope is put around it."""

    body: bytes
    content_type: str
    content_encoding: str
    headers: Mapping[str, Any]
    properties: Mapping[str, Any]


def encode_task(
    message: TaskMessage, *, serializer: str | None = None, compression: str | None = None
) -> WireMessage:
    """Serialize (and optionally compress) a task message into its wire form.

    ``serializer`` and ``compression`` default to what the message itself records.
    """
    body, content_type, content_encoding = serializers.dumps(
        message.body(), serializer or message.content_type
    )
    headers = message.headers.to_wire()
    method = compression if compression is not None else message.compression
    if method:
        body, headers["compression"] = _compression.compress(body, method)
    return WireMessage(
        body=body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        properties=message.properties.to_wire(),
    )


def decode_body(
    wire: WireMessage,
    *,
    accept: Iterable[str] = serializers.DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """Decompress and deserialize the body alone, without looking at its shape."""
    body = wire.body
    headers = wire.headers
    method = (
        headers.get("compression")
        if type(headers) is dict or isinstance(headers, Mapping)
        else None
    )
    if method is not None:
        if not isinstance(method, str):
            raise ValidationError("headers.compression", "must be a string")
        body = _compression.decompress(body, method, limits.max_message_bytes)
    return serializers.loads(
        body, wire.content_type, wire.content_encoding, accept=accept, limits=limits
    )


#: Set on a message handed to the broker's delayed delivery: the broker's clock decided it is due,
#: so a receiver whose own clock disagrees (skewed, or jumped back) runs it anyway (SPEC.md §2.9).
BROKER_DELAYED_HEADER = "x-celeriac-broker-delayed"


def mark_broker_delayed(message: WireMessage) -> WireMessage:
    """The message with :data:`BROKER_DELAYED_HEADER` set."""
    headers = {**message.headers, BROKER_DELAYED_HEADER: True}
    return WireMessage(
        message.body, message.content_type, message.content_encoding, headers, message.properties
    )


def _check_arguments(args: Sized, kwargs: Sized, limits: Limits) -> None:
    if len(args) + len(kwargs) > limits.max_arguments:
        raise LimitExceeded(
            "body",
            f"{len(args)} arguments and {len(kwargs)} keyword arguments: more than "
            f"{limits.max_arguments} in all (Limits.max_arguments)",
        )


def decode_task(
    wire: WireMessage,
    *,
    accept: Iterable[str] = serializers.DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read a task message of protocol v2, or v1 lifted to v2 (SPEC.md §3.2 tells them apart)."""
    headers = wire.headers
    if type(headers) is not dict and not isinstance(headers, Mapping):
        raise ValidationError("headers", "must be a mapping")
    properties = parse_properties(wire.properties)
    body = decode_body(wire, accept=accept, limits=limits)
    compression = headers.get("compression")
    content_type = serializers.get_serializer(wire.content_type).content_type
    # A v2 body is a list: only another shape can be v1.
    if type(body) is not list and is_v1_body(headers, body):
        lifted = lift_v1(headers, body, properties, content_type, compression)
        _check_arguments(lifted.args, lifted.kwargs, limits)
        return lifted
    if "task" not in headers:
        raise ValidationError(
            "headers.task", "is required: not a v2 message, and the body is not a v1 message"
        )
    parsed = parse_headers(headers)
    args, kwargs, embed = parse_body(body)
    if len(args) + len(kwargs) > limits.max_arguments:
        _check_arguments(args, kwargs, limits)
    # Positional, in the order of TaskMessage's fields (keyword arguments cost more).
    return TaskMessage(parsed, args, kwargs, embed, properties, content_type, compression, 2)
