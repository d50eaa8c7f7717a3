"""Floats in AMQP header tables. pika refuses to encode a Python float, and decodes the double
(``d``) and float (``f``) types by truncating them to integers; Celery (through py-amqp) writes
doubles, e.g. ``timelimit = [30, 20.5]``. Importing this module makes pika write floats as
doubles and read both types as floats, the way py-amqp does."""

from __future__ import annotations

import struct
from typing import Any

import pika.data

__all__ = ["install"]

_original = pika.data.encode_value
_original_decode = pika.data.decode_value


def _encode_value(pieces: list[bytes], value: Any) -> int:
    if isinstance(value, float):
        pieces.append(b"d" + struct.pack(">d", value))
        return 9
    result: int = _original(pieces, value)
    return result


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
        pika.data.decode_value = _decode_value


install()
