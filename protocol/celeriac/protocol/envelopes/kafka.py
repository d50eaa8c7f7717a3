"""The Kafka envelope (SPEC.md §6.5): record value = JSON envelope, key = task id.

Record headers repeat the envelope's content type and encoding, so a consumer can refuse
disallowed content without parsing the value; ``x-celeriac-task`` names the task for tools.
Pure: builds and reads records, never talks to a broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ValidationError
from ..limits import DEFAULT_LIMITS, Limits
from ..message import TaskMessage
from ..serializers import DEFAULT_ACCEPT, get_serializer
from ..wire import WireMessage, decode_task
from . import json_envelope
from .json_envelope import EnvelopeInfo

__all__ = [
    "DELIVER_AT_HEADER",
    "REDELIVERED_HEADER",
    "REJECT_REASON_HEADER",
    "TASK_HEADER",
    "EnvelopeInfo",
    "KafkaRecord",
    "deliver_at",
    "header",
    "pack",
    "pack_wire",
    "record_size",
    "unpack",
    "unpack_consumed",
    "unpack_record",
    "unpack_wire",
    "with_headers",
]

#: Header on a dead-lettered record that says why it was rejected.
REJECT_REASON_HEADER = "x-celeriac-reject-reason"
#: Header that names the task, for tools that route or inspect records.
TASK_HEADER = "x-celeriac-task"
#: Header on a record of a delay topic: when it is due, Unix time in ms (ASCII decimal).
DELIVER_AT_HEADER = "x-celeriac-deliver-at"
#: Header on a record that was given back (requeued) and produced again.
REDELIVERED_HEADER = "x-celeriac-redelivered"
# Fixed cost of one record in a v2 batch beyond key, value and headers (varints, attributes),
# counted generously with the batch header so a size check errs on the safe side.
_RECORD_OVERHEAD = 96

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What a producer sends: key, value and headers."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def pack(
    message: TaskMessage,
    queue: str = "celery",
    *,
    delivery_tag: str | None = None,
    serializer: str | None = None,
    compression: str | None = None,
) -> KafkaRecord:
    """The record for topic ``queue``."""
    value = json_envelope.pack(
        message,
        routing_key=queue,
        delivery_tag=delivery_tag,
        serializer=serializer,
        compression=compression,
    )
    content_type = get_serializer(serializer or message.content_type)
    return KafkaRecord(
        key=message.id.encode("utf-8"),
        value=value,
        headers=(
            ("content-type", content_type.content_type.encode("utf-8")),
            ("content-encoding", content_type.content_encoding.encode("utf-8")),
            (TASK_HEADER, message.task.encode("utf-8")),
        ),
    )


def pack_wire(wire: WireMessage, queue: str, *, exchange: str = "") -> KafkaRecord:
    """The record carrying ``wire`` to topic ``queue`` (or broadcast through ``exchange``)."""
    value = json_envelope.pack_wire(wire, exchange=exchange, routing_key=queue)
    key = wire.headers.get("id") or wire.properties.get("correlation_id")
    headers: list[tuple[str, bytes]] = [
        ("content-type", wire.content_type.encode("utf-8")),
        ("content-encoding", wire.content_encoding.encode("utf-8")),
    ]
    task = wire.headers.get("task")
    if isinstance(task, str):
        headers.append((TASK_HEADER, task.encode("utf-8")))
    return KafkaRecord(
        key=key.encode("utf-8") if isinstance(key, str) else None,
        value=value,
        headers=tuple(headers),
    )


def with_headers(record: KafkaRecord, extra: Mapping[str, bytes]) -> KafkaRecord:
    """``record`` with the record headers in ``extra`` set (replacing any of the same name)."""
    kept = tuple((k, v) for k, v in record.headers if k not in extra)
    return KafkaRecord(record.key, record.value, kept + tuple(extra.items()))


def record_size(record: KafkaRecord) -> int:
    """An upper estimate of the bytes the record takes in a batch (for the broker's limit)."""
    size = _RECORD_OVERHEAD + len(record.value) + len(record.key or b"")
    return size + sum(len(k.encode("utf-8")) + len(v) + 4 for k, v in record.headers)


def header(headers: Headers | None, name: str) -> bytes | None:
    """The value of record header ``name`` (the last one wins), or None."""
    found = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found


def deliver_at(headers: Headers | None) -> int | None:
    """When a delay-topic record is due (Unix ms), or None when it carries no valid time."""
    raw = header(headers, DELIVER_AT_HEADER)
    if raw is None:
        return None
    try:
        return int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def unpack_wire(
    value: bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, EnvelopeInfo]:
    """Read a record value into a wire message."""
    return json_envelope.unpack_wire(value, limits=limits)


def unpack_record(
    value: bytes | None, headers: Headers | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, EnvelopeInfo]:
    """Read a record: the value is authoritative, and record headers that contradict it make
    the record unreadable (SPEC.md §6.5). ``redelivered`` is set by the record header."""
    if value is None:
        raise ValidationError("record.value", "missing (a tombstone is not a message)")
    wire, info = json_envelope.unpack_wire(value, limits=limits)
    if _redelivered_by(headers, wire) and not info.redelivered:
        info = EnvelopeInfo(info.exchange, info.routing_key, info.delivery_tag, True)
    return wire, info


def unpack_consumed(
    value: bytes | None, headers: Headers | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, bool]:
    """What a consumer needs of a record: its wire message, and whether the record or its
    envelope says it was delivered before. Refuses exactly what :func:`unpack_record` refuses."""
    if value is None:
        raise ValidationError("record.value", "missing (a tombstone is not a message)")
    wire, redelivered = json_envelope.unpack_consumed(value, limits=limits)
    return wire, _redelivered_by(headers, wire) or redelivered


def _redelivered_by(headers: Headers | None, wire: WireMessage) -> bool:
    """Whether the record headers mark a redelivery; raises if they contradict the envelope."""
    # One pass over the headers (this runs for every record consumed); the last of a name wins.
    content_type: bytes | None = None
    content_encoding: bytes | None = None
    redelivered = False
    for key, raw in headers or ():
        if key == "content-type":
            content_type = raw
        elif key == "content-encoding":
            content_encoding = raw
        elif key == REDELIVERED_HEADER:
            redelivered = True
    if content_type is not None and content_type != wire.content_type.encode("utf-8"):
        raise _contradiction("content-type", content_type, wire.content_type)
    # The envelope's content-encoding is whatever JSON it held (decode_task checks it later).
    if content_encoding is not None and content_encoding != _utf8(wire.content_encoding):
        raise _contradiction("content-encoding", content_encoding, wire.content_encoding)
    return redelivered


def _utf8(value: object) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else None


def _contradiction(name: str, given: bytes, expected: object) -> ValidationError:
    return ValidationError(
        f"record.headers.{name}", f"{given!r} contradicts the envelope's {expected!r}"
    )


def unpack(
    value: bytes,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read a record value straight into a task message."""
    wire, _ = unpack_wire(value, limits=limits)
    return decode_task(wire, accept=accept, limits=limits)
