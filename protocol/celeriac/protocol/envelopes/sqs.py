"""The SQS envelope (SPEC.md §6.4): the message body is the JSON envelope, base64-encoded.

Kombu writes base64 so that any body survives SQS's character rules; readers also take a raw
JSON envelope, which some clients send. Also here: Kombu's queue naming, the FIFO group and
deduplication ids, how a long delay is split into SQS-sized hops, and the names of the
broadcast subscriber queues. Pure functions only: the transport does the I/O.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

from .. import base64_codec
from ..errors import DecodeError, ValidationError
from ..limits import DEFAULT_LIMITS, Limits
from ..message import TaskMessage
from ..serializers import DEFAULT_ACCEPT
from ..wire import WireMessage, decode_task, encode_task
from . import json_envelope
from .json_envelope import EnvelopeInfo

__all__ = [
    "DELIVER_AT_ATTRIBUTE",
    "MAX_BODY_BYTES",
    "MAX_DELAY_SECONDS",
    "REJECT_REASON_ATTRIBUTE",
    "SEQUENCE_ATTRIBUTE",
    "EnvelopeInfo",
    "body_bytes",
    "broadcast_queue_name",
    "broadcast_queue_prefix",
    "check_size",
    "deduplication_id",
    "delay_hop",
    "group_id",
    "pack",
    "pack_wire",
    "queue_name",
    "unpack",
    "unpack_wire",
]

#: SQS's default (and ElasticMQ's strict) ceiling for a message: body plus attributes.
MAX_BODY_BYTES = 256 * 1024
#: Longest per-message delay SQS takes (``DelaySeconds``).
MAX_DELAY_SECONDS = 900
#: Message attribute holding when a message delayed past 900 s is due (Unix seconds).
DELIVER_AT_ATTRIBUTE = "celeriac-deliver-at"
#: Message attribute with the dead-letter reason (also in ``headers``, where the contract reads it).
REJECT_REASON_ATTRIBUTE = "celeriac-reject-reason"
#: Message attribute with the publisher's sequence number, to order messages sent in one
#: millisecond (SQS standard queues keep no order among them).
SEQUENCE_ATTRIBUTE = "celeriac-seq"

# Kombu turns punctuation other than "-_." into "_" and "." into "-".
_KOMBU_TABLE = {ord(c): "_" for c in string.punctuation if c not in "-_."} | {ord("."): "-"}
_VALID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO = ".fifo"
_FIFO_DLQ = ".fifo.dlq"
# Longest stem of the exchange name kept readable in a broadcast queue's name.
_BCAST_STEM = 24


def queue_name(queue: str, prefix: str = "") -> str:
    """The SQS queue name Kombu uses: dots become dashes, other punctuation underscores.

    A ``.fifo`` suffix is kept, as SQS requires it for FIFO queues. The dead-letter queue of a
    FIFO queue must be FIFO too: ``jobs.fifo.dlq`` becomes ``jobs-dlq.fifo``.
    """
    if queue.endswith(_FIFO_DLQ):
        queue = queue[: -len(_FIFO_DLQ)] + ".dlq" + _FIFO
    fifo = queue.endswith(_FIFO)
    stem = queue[: -len(_FIFO)] if fifo else queue
    name = (prefix + stem).translate(_KOMBU_TABLE)
    limit = 80 - len(_FIFO) if fifo else 80
    if not _VALID.fullmatch(name) or len(name) > limit:
        raise ValidationError(
            "queue",
            f"{name + _FIFO if fifo else name!r} is not a valid SQS queue name "
            "(1-80 of A-Z a-z 0-9 _ -, .fifo included); use a shorter queue name or prefix",
        )
    return name + _FIFO if fifo else name


def broadcast_queue_prefix(exchange: str, prefix: str = "") -> str:
    """The name prefix every subscriber queue of ``exchange`` starts with (SPEC.md §6.4).

    A hash of the full exchange name follows its readable stem, so that listing one exchange's
    subscribers never matches another exchange whose name merely starts the same way.
    """
    stem = exchange.translate(_KOMBU_TABLE)[:_BCAST_STEM]
    digest = hashlib.sha256(exchange.encode("utf-8")).hexdigest()[:10]
    return queue_name(f"celeriac-bcast-{stem}-{digest}-", prefix)


def broadcast_queue_name(exchange: str, subscriber: str, prefix: str = "") -> str:
    """The queue of one subscriber (``subscriber``: a short unique id) of ``exchange``."""
    return queue_name(broadcast_queue_prefix(exchange, prefix) + subscriber)


def pack_wire(
    wire: WireMessage,
    queue: str = "celery",
    *,
    exchange: str = "",
    routing_key: str | None = None,
    delivery_tag: str | None = None,
) -> str:
    """The SQS ``MessageBody`` of a wire message: base64 of its JSON envelope."""
    data = json_envelope.pack_wire(
        wire,
        exchange=exchange,
        routing_key=routing_key if routing_key is not None else queue,
        delivery_tag=delivery_tag,
    )
    return base64_codec.encode(data)


def check_size(body: str, attributes_size: int = 0, limit: int = MAX_BODY_BYTES) -> None:
    """Raise if a message (body plus attributes) is over ``limit`` bytes."""
    size = len(body.encode("utf-8")) + attributes_size
    if size > limit:
        raise ValidationError(
            "body",
            f"SQS message is {size} bytes, over the queue's {limit}-byte limit; "
            "compress it or pass a reference to the data instead",
        )


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
    wire = encode_task(message, serializer=serializer, compression=compression)
    body = pack_wire(
        wire, queue, exchange=exchange, routing_key=routing_key, delivery_tag=delivery_tag
    )
    check_size(body)
    return body


def body_bytes(body: str | bytes) -> bytes:
    """The envelope bytes an SQS body carries: base64-decoded, or as is when it is raw JSON.

    Raises DecodeError when it is neither.
    """
    data = body.encode("utf-8") if isinstance(body, str) else body
    if data.lstrip().startswith(b"{"):
        return data
    try:
        return base64_codec.decode(data)
    except ValueError as exc:
        raise DecodeError("body", f"neither a JSON envelope nor base64: {exc}") from None


def unpack_wire(
    body: str | bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, EnvelopeInfo]:
    """Read an SQS body (base64 or raw JSON envelope) into a wire message."""
    return json_envelope.unpack_wire(body_bytes(body), limits=limits)


def unpack(
    body: str | bytes,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read an SQS body straight into a task message."""
    wire, _ = unpack_wire(body, limits=limits)
    return decode_task(wire, accept=accept, limits=limits)


def group_id(wire: WireMessage, queue: str, default: str | None = None) -> str:
    """A FIFO queue's ``MessageGroupId``: Kombu's property, the ``MessageGroupId`` header,
    the transport's default, else the queue's name (one ordered group per queue)."""
    for source in (wire.properties, wire.headers):
        value = source.get("MessageGroupId")
        if isinstance(value, str) and value:
            return value
    return default or queue


def deduplication_id(wire: WireMessage) -> str:
    """A FIFO queue's ``MessageDeduplicationId``.

    Kombu's property if given; else the task id with its retry count, so that a retry (the same
    id, sent again within SQS's five-minute window) is not dropped as a duplicate; else a hash
    of the body and headers.
    """
    given = wire.properties.get("MessageDeduplicationId")
    if isinstance(given, str) and given:
        return given
    task_id = wire.headers.get("id")
    if isinstance(task_id, str) and task_id:
        return _dedup_safe(f"{task_id}-{_retries(wire.headers)}")
    h = hashlib.sha256(wire.body)
    h.update(repr(sorted(wire.headers.items(), key=lambda kv: str(kv[0]))).encode("utf-8"))
    return h.hexdigest()


def _retries(headers: Mapping[str, Any]) -> int:
    value = headers.get("retries")
    return value if isinstance(value, int) else 0


def _dedup_safe(value: str) -> str:
    # SQS takes 1-128 printable ASCII characters; anything else is hashed.
    if len(value) <= 128 and value.isascii() and value.isprintable():
        return value
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def delay_hop(remaining: float) -> int:
    """The ``DelaySeconds`` of the next hop of a delay that has ``remaining`` seconds left.

    Whole seconds, rounded up so a message is never early, at most SQS's 900; 0 means due.
    """
    if remaining <= 0:
        return 0
    return min(MAX_DELAY_SECONDS, math.ceil(remaining - 1e-3))
