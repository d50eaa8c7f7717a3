"""A message as the verifier took it off the broker, and the small conversions verifiers share."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class RawMessage:
    """One message as the verifier took it off the broker, before any decoding."""

    envelope: str  # "json" (Redis, SQS, ...) or "amqp"
    queue: str
    received_at: datetime
    data: bytes = b""  # the JSON envelope, or the AMQP body
    amqp_properties: dict[str, Any] = field(default_factory=dict)
    broker: str = ""  # "redis", "amqp", "sqs", ...
    list_key: str | None = None  # Redis: the list the entry sat in


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def now_utc() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())
