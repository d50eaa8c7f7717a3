"""The SQS envelope (SPEC.md §5.4): the message body is the JSON envelope, base64-encoded.

Kombu writes base64 so that any body survives SQS's character rules; readers also take a raw
JSON envelope, which some clients send.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Iterable

from ..errors import DecodeError, ValidationError
from ..limits import DEFAULT_LIMITS, Limits
from ..message import TaskMessage
from ..serializers import DEFAULT_ACCEPT
from ..wire import WireMessage, decode_task
from . import json_envelope
from .json_envelope import EnvelopeInfo

__all__ = ["MAX_BODY_BYTES", "EnvelopeInfo", "pack", "queue_name", "unpack", "unpack_wire"]

#: SQS refuses message bodies larger than 256 KiB.
MAX_BODY_BYTES = 256 * 1024
# Kombu turns punctuation other than "-_." into "_" and "." into "-".
_KOMBU_TABLE = {ord(c): "_" for c in string.punctuation if c not in "-_."} | {ord("."): "-"}
_VALID = re.compile(r"[A-Za-z0-9_-]{1,80}")


def queue_name(queue: str, prefix: str = "") -> str:
    """The SQS queue name Kombu uses: dots become dashes, other punctuation underscores.

    A ``.fifo`` suffix is kept, as SQS requires it for FIFO queues.
    """
    fifo = queue.endswith(".fifo")
    stem = queue[: -len(".fifo")] if fifo else queue
    name = (prefix + stem).translate(_KOMBU_TABLE)
    if not _VALID.fullmatch(name):
        raise ValidationError(
            "queue", f"{name!r} is not a valid SQS queue name (1-80 of A-Z a-z 0-9 _ -)"
        )
    return name + ".fifo" if fifo else name


def pack(
    message: TaskMessage,
    queue: str = "celery",
    *,
    exchange: str = "",
    routing_key: str | None = None,
    delivery_tag: str | None = None,
    serializer: str | None = None,
    compression: str | None = None,
) -> str:
    """The SQS ``MessageBody``; raises if it is over SQS's 256 KiB limit."""
    data = json_envelope.pack(
        message,
        exchange=exchange,
        routing_key=routing_key if routing_key is not None else queue,
        delivery_tag=delivery_tag,
        serializer=serializer,
        compression=compression,
    )
    body = base64.b64encode(data).decode("ascii")
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError(
            "body",
            f"SQS message is {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit; "
            "compress it or pass a reference to the data instead",
        )
    return body


def unpack_wire(
    body: str | bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, EnvelopeInfo]:
    """Read an SQS body (base64 or raw JSON envelope) into a wire message."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if not data.lstrip().startswith(b"{"):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError("body", f"neither a JSON envelope nor base64: {exc}") from None
    return json_envelope.unpack_wire(data, limits=limits)


def unpack(
    body: str | bytes,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read an SQS body straight into a task message."""
    wire, _ = unpack_wire(body, limits=limits)
    return decode_task(wire, accept=accept, limits=limits)
