"""The frames of one ``basic.publish``, built here for the windowed publish: the same bytes
pika writes (``tests/transports/test_amqp_frames.py`` compares them), without pika's
per-call objects (a Publish method, BasicProperties, three Frame objects, each marshalled on
its own), which were ~15 us of a ~35 us publish.

Only what is plain is built here: string properties that are ``str``, octets and timestamps
that are ``int`` in range, a body that fits in one frame. Anything else returns None, and the
caller publishes through pika as before."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from celeriac.protocol import WireMessage

from .pika_floats import encode_table

__all__ = ["publish_frames"]

_FRAME = struct.Struct(">BHI").pack
#: A content header's start: class (Basic, 60), weight 0, body size, property flags.
_HEADER_START = struct.Struct(">HHQH").pack
_TIMESTAMP = struct.Struct(">Q").pack
_END = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_BASIC = 60
#: Basic.Publish: class 60, method 40, then the reserved ticket (0).
_PUBLISH = struct.Struct(">HHH").pack(_BASIC, 40, 0)

# The kinds of the basic properties after the three every message has.
_SHORT, _OCTET, _STAMP = 0, 1, 2
#: Property -> (its flag bit, its kind), for the properties that may come from
#: ``WireMessage.properties`` (content type, encoding and headers come from the message's own
#: fields, as ``celeriac.protocol.envelopes.amqp.pack_wire`` puts them).
_PROPERTIES: dict[str, tuple[int, int]] = {
    "delivery_mode": (1 << 12, _OCTET),
    "priority": (1 << 11, _OCTET),
    "correlation_id": (1 << 10, _SHORT),
    "reply_to": (1 << 9, _SHORT),
    "expiration": (1 << 8, _SHORT),
    "message_id": (1 << 7, _SHORT),
    "timestamp": (1 << 6, _STAMP),
    "type": (1 << 5, _SHORT),
    "user_id": (1 << 4, _SHORT),
    "app_id": (1 << 3, _SHORT),
    "cluster_id": (1 << 2, _SHORT),
}
#: Content type, content encoding and headers: always set by ``pack_wire``.
_ALWAYS = (1 << 15) | (1 << 14) | (1 << 13)

#: Method frames by (channel, exchange, routing key, mandatory): a client publishes to a few
#: queues over and over. Bounded, as a client naming ever-new queues would grow it.
_methods: dict[tuple[int, str, str, bool], bytes] = {}
_METHODS_KEPT = 4096


class _NotPlain(Exception):
    """A value the fast path leaves to pika."""


def _short(value: Any) -> bytes:
    if type(value) is not str:
        raise _NotPlain
    data = value.encode()
    if len(data) > 255:  # pika refuses it, with its own error: let it say so
        raise _NotPlain
    return bytes((len(data),)) + data


def _method_frame(channel: int, exchange: str, routing_key: str, mandatory: bool) -> bytes:
    key = (channel, exchange, routing_key, mandatory)
    frame = _methods.get(key)
    if frame is None:
        payload = (
            _PUBLISH + _short(exchange) + _short(routing_key) + (b"\x01" if mandatory else b"\x00")
        )
        frame = _FRAME(_METHOD, channel, len(payload)) + payload + _END
        if len(_methods) < _METHODS_KEPT:
            _methods[key] = frame
    return frame


def _properties(wire: WireMessage) -> tuple[int, list[bytes]]:
    """The property flags and the encoded values, in AMQP's order."""
    pieces = [_short(wire.content_type), _short(wire.content_encoding)]
    encode_table(pieces, wire.headers)
    flags = _ALWAYS
    more: list[tuple[int, bytes]] = []
    properties: Mapping[str, Any] = wire.properties
    for name, value in properties.items():
        known = _PROPERTIES.get(name)
        if known is None or value is None:  # not a basic property (or unset): left out
            continue
        flag, kind = known
        if kind == _SHORT:
            piece = _short(value)
        elif type(value) is not int:
            raise _NotPlain
        elif kind == _OCTET:
            if not 0 <= value <= 255:
                raise _NotPlain
            piece = bytes((value,))
        else:
            if not 0 <= value < 1 << 64:
                raise _NotPlain
            piece = _TIMESTAMP(value)
        flags |= flag
        more.append((flag, piece))
    if more:
        more.sort(reverse=True)  # flags are distinct: higher bits come first on the wire
        pieces += [piece for _, piece in more]
    return flags, pieces


def publish_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    wire: WireMessage,
    body_max: int,
) -> bytes | None:
    """The method, content header and body frames of publishing ``wire``, joined; None when
    pika must build them (a property of an unusual type, a body longer than ``body_max``, the
    connection's largest body frame)."""
    body = wire.body
    size = len(body)
    if size > body_max or type(body) is not bytes:
        return None
    try:
        method = _method_frame(channel, exchange, routing_key, mandatory)
        flags, pieces = _properties(wire)
    except _NotPlain:
        return None
    props = b"".join(pieces)
    header = _HEADER_START(_BASIC, 0, size, flags)
    parts = [method, _FRAME(_HEADER, channel, len(header) + len(props)), header, props, _END]
    if size:  # pika writes no body frame for an empty body
        parts += [_FRAME(_BODY, channel, size), body, _END]
    return b"".join(parts)
