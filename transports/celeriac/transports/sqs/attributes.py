"""SQS message attributes Celeriac writes: building them, sizing them, copying them."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from celeriac.protocol.envelopes import sqs as envelope

__all__ = [
    "attributes_size",
    "copy_attributes",
    "deliver_at",
    "next_sequence",
    "number",
    "sequence",
    "text",
]

# One counter per process: orders this process's messages sent within the same millisecond.
_sequence = itertools.count(1)


def next_sequence() -> dict[str, str]:
    """The ``celeriac-seq`` attribute for the next message."""
    return number(next(_sequence))


def number(value: float) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": repr(value)}


def text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def attributes_size(attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """How many bytes attributes count towards the message size (name, type and value)."""
    total = 0
    for name, attr in attributes.items():
        value = attr.get("StringValue") or attr.get("BinaryValue") or ""
        total += len(name.encode()) + len(str(attr.get("DataType", "")).encode())
        total += len(value) if isinstance(value, bytes) else len(str(value).encode())
    return total


def copy_attributes(received: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Received attributes in the shape SendMessage takes (drops the empty list fields)."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in received.items():
        kept = {k: v for k, v in attr.items() if k in ("DataType", "StringValue", "BinaryValue")}
        out[name] = kept
    return out


def deliver_at(received: Mapping[str, Mapping[str, Any]]) -> float | None:
    """When a long-delayed message is due (Unix seconds), or None when it has no such mark."""
    attr = received.get(envelope.DELIVER_AT_ATTRIBUTE)
    if not attr:
        return None
    try:
        return float(attr.get("StringValue", ""))
    except ValueError:
        return None


def sequence(received: Mapping[str, Mapping[str, Any]]) -> int:
    attr = received.get(envelope.SEQUENCE_ATTRIBUTE)
    try:
        return int(attr.get("StringValue", 0)) if attr else 0
    except ValueError:
        return 0
