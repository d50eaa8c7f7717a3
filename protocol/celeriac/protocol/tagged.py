"""Kombu's tagged JSON values: how datetimes, UUIDs, decimals and bytes travel inside JSON.

A tagged value is an object with exactly the keys ``__type__`` and ``__value__`` (SPEC.md §4.1).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import DecodeError, LimitExceeded, ValidationError

__all__ = ["TAG_TYPE", "TAG_VALUE", "from_tagged", "to_tagged"]

TAG_TYPE = "__type__"
TAG_VALUE = "__value__"
_TAG_KEYS = frozenset((TAG_TYPE, TAG_VALUE))
_PLAIN = (str, int, float, bool, type(None))
# Leaves that need neither a change nor a check (a float may be NaN), skipped without a call.
_SKIP = frozenset((str, int, bool, type(None)))


def _too_deep(path: str) -> LimitExceeded:
    # Report where the deep part starts, not a path as long as the hostile input.
    short = path if len(path) <= 60 else path[:60] + "..."
    return LimitExceeded(short, "nesting is deeper than the limit")


def _tag(marker: str, value: Any) -> dict[str, Any]:
    return {TAG_TYPE: marker, TAG_VALUE: value}


def _encode_bytes(value: bytes) -> dict[str, Any]:
    # Kombu prefers the readable form and falls back to base64 only for non-UTF-8 bytes.
    try:
        return _tag("bytes", value.decode("utf-8"))
    except UnicodeDecodeError:
        return _tag("base64", base64.b64encode(value).decode("ascii"))


def _encode_leaf(value: Any, path: str) -> Any:
    if isinstance(value, datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, date):
        return _tag("date", value.isoformat())
    if isinstance(value, time):
        return _tag("time", value.isoformat())
    if isinstance(value, uuid.UUID):
        return _tag("uuid", {"hex": value.hex, "version": value.version})
    if isinstance(value, Decimal):
        return _tag("decimal", str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return _encode_bytes(bytes(value))
    reducer = getattr(value, "__json__", None)
    if reducer is not None:
        return reducer()
    raise ValidationError(path, f"cannot be serialized as JSON: {type(value).__name__}")


def to_tagged(value: Any, path: str = "body", max_depth: int = 100) -> Any:
    """Return ``value`` with every non-JSON leaf replaced by its tagged form.

    Containers that need no change are returned as they are (no copy), so plain payloads cost
    one walk and no allocation.
    """
    return _to_tagged(value, path, max_depth)


def _to_tagged(value: Any, path: str, depth: int) -> Any:
    if value.__class__ is float:
        if value - value != 0.0:  # NaN or an infinity: not JSON, and orjson would write null
            raise ValidationError(path, f"{value!r} cannot be written as JSON")
        return value
    if isinstance(value, _PLAIN):
        return value
    if depth <= 0:
        raise _too_deep(path)
    if isinstance(value, list | tuple):
        items: list[Any] | None = None
        for i, item in enumerate(value):
            if item.__class__ in _SKIP:
                continue
            new = _to_tagged(item, f"{path}[{i}]", depth - 1)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    if isinstance(value, dict):
        mapping: dict[Any, Any] | None = None
        for key, item in value.items():
            if item.__class__ in _SKIP:
                continue
            new = _to_tagged(item, f"{path}.{key}", depth - 1)
            if new is not item:
                if mapping is None:
                    mapping = dict(value)
                mapping[key] = new
        return value if mapping is None else mapping
    if isinstance(value, set | frozenset):
        raise ValidationError(path, "sets cannot be serialized as JSON; pass a list")
    return _encode_leaf(value, path)


def _parse_datetime(v: Any) -> datetime:
    return datetime.fromisoformat(v)


def _parse_date(v: Any) -> date:
    return datetime.fromisoformat(v).date()


def _parse_time(v: Any) -> time:
    return time.fromisoformat(v)


def _parse_uuid(v: Any) -> uuid.UUID:
    if isinstance(v, dict):
        return uuid.UUID(hex=v["hex"])
    return uuid.UUID(v)


def _parse_decimal(v: Any) -> Decimal:
    if not isinstance(v, str | int):
        raise TypeError("a decimal is written as a string")
    return Decimal(v)


def _parse_bytes(v: Any) -> bytes:
    if not isinstance(v, str):
        raise TypeError("bytes are written as a string")
    return v.encode("utf-8")


def _parse_base64(v: Any) -> bytes:
    if not isinstance(v, str):
        raise TypeError("base64 bytes are written as a string")
    return base64.b64decode(v.encode("ascii"), validate=True)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _parse_datetime,
    "date": _parse_date,
    "time": _parse_time,
    "uuid": _parse_uuid,
    "decimal": _parse_decimal,
    "bytes": _parse_bytes,
    "base64": _parse_base64,
}

_DECODE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    InvalidOperation,
    binascii.Error,
    UnicodeError,
)


def from_tagged(value: Any, path: str = "body", max_depth: int = 100) -> Any:
    """Return ``value`` with every tagged object replaced by the Python value it stands for."""
    return _from_tagged(value, path, max_depth)


def _from_tagged(value: Any, path: str, depth: int) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if depth <= 0:
        raise _too_deep(path)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, _PLAIN):
                value[i] = _from_tagged(item, f"{path}[{i}]", depth - 1)
        return value
    if isinstance(value, dict):
        if len(value) == 2 and value.keys() == _TAG_KEYS:
            marker = value[TAG_TYPE]
            decoder = _DECODERS.get(marker) if isinstance(marker, str) else None
            if decoder is None:
                raise ValidationError(f"{path}.__type__", f"unknown tagged type {marker!r}")
            try:
                return decoder(value[TAG_VALUE])
            except _DECODE_ERRORS as exc:
                raise DecodeError(f"{path}.__value__", f"invalid {marker}: {exc}") from None
        for key, item in value.items():
            if not isinstance(item, _PLAIN):
                value[key] = _from_tagged(item, f"{path}.{key}", depth - 1)
        return value
    return value
