"""Floats in AMQP header tables. pika refuses to encode a Python float, and decodes the double
(``d``) and float (``f``) types by truncating them to integers; Celery (through py-amqp) writes
doubles, e.g. ``timelimit = [30, 20.5]``. Importing this module makes pika write floats as
doubles and read both types as floats, the way py-amqp does.

It also encodes tables faster: the plain values of a Celery header table (str, int, None, bool,
float, lists and tables of them) by exact type, one piece each, the same bytes pika writes
(``tests/transports/test_amqp_tables.py`` compares them); anything else goes to pika. pika's
chain of ``isinstance`` checks and helper calls was ~20 us of each publish's ~25 us header
frame."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import pika.data
import pika.exceptions

__all__ = ["encode_table", "install"]

_original = pika.data.encode_value
_original_decode = pika.data.decode_value
_original_table = pika.data.encode_table
_length = struct.Struct(">I").pack
_int = struct.Struct(">i").pack
_long = struct.Struct(">q").pack
_double = struct.Struct(">d").pack


def _encode_value(pieces: list[bytes], value: Any) -> int:
    kind = type(value)
    if kind is str:
        data = value.encode()
        pieces.append(b"S" + _length(len(data)) + data)
        return 5 + len(data)
    if kind is int:  # as pika: a signed 32-bit I if it fits, else a 64-bit l (else refused)
        if -0x80000000 <= value <= 0x7FFFFFFF:
            pieces.append(b"I" + _int(value))
            return 5
        pieces.append(b"l" + _long(value))
        return 9
    if value is None:
        pieces.append(b"V")
        return 1
    if kind is bool:
        pieces.append(b"t\x01" if value else b"t\x00")
        return 2
    if isinstance(value, float):
        pieces.append(b"d" + _double(value))
        return 9
    if kind is dict:
        pieces.append(b"F")
        return 1 + _encode_table(pieces, value)
    if kind is list:
        items: list[bytes] = []
        for item in value:
            _encode_value(items, item)
        data = b"".join(items)
        pieces.append(b"A" + _length(len(data)) + data)
        return 5 + len(data)
    result: int = _original(pieces, value)
    return result


#: Encoded table keys (a length byte and the name) by key: Celery's header names repeat in
#: every message. Bounded, so tables with ever-new keys do not grow it without end.
_keys: dict[Any, bytes] = {}
_KEYS_KEPT = 4096


def _encode_key(key: Any) -> bytes:
    name: bytes = key.encode() if type(key) is str else key  # pika takes bytes keys too
    if len(name) > 255:
        raise pika.exceptions.ShortStringTooLong(name)
    encoded = bytes((len(name),)) + name
    if len(_keys) < _KEYS_KEPT and type(key) in (str, bytes):
        _keys[key] = encoded
    return encoded


def _encode_table(pieces: list[bytes], table: Mapping[Any, Any] | None) -> int:
    at = len(pieces)
    pieces.append(b"")  # the table's size, once known
    size = 0
    for key, value in (table or {}).items():
        encoded = _keys.get(key)
        if encoded is None:
            encoded = _encode_key(key)
        pieces.append(encoded)
        size += len(encoded) + _encode_value(pieces, value)
    pieces[at] = _length(size)
    return size + 4


#: The table encoder, for frames built outside pika (``frames.py``).
encode_table = _encode_table


def _decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    kind = encoded[offset : offset + 1]
    if kind == b"d":
        return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
    if kind == b"f":
        return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
    result: tuple[Any, int] = _original_decode(encoded, offset)
    return result


def install() -> None:
    """Patch once; idempotent."""
    if pika.data.encode_value is not _encode_value:
        pika.data.encode_value = _encode_value
        pika.data.encode_table = _encode_table
        pika.data.decode_value = _decode_value


install()
