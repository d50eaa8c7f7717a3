"""The Kafka envelope (SPEC.md §5.5): record value = JSON envelope, key = task id.

Record headers repeat the envelope's content type and encoding, so a consumer can refuse
disallowed content without parsing the value; ``x-celeriac-task`` names the task for tools.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..limits import DEFAULT_LIMITS, Limits
from ..message import TaskMessage
from ..serializers import DEFAULT_ACCEPT, get_serializer
from ..wire import WireMessage, decode_task
from . import json_envelope
from .json_envelope import EnvelopeInfo

__all__ = [
    "REJECT_REASON_HEADER",
    "TASK_HEADER",
    "EnvelopeInfo",
    "KafkaRecord",
    "pack",
    "unpack",
    "unpack_wire",
]

#: Header on a dead-lettered record that says why it was rejected.
REJECT_REASON_HEADER = "x-celeriac-reject-reason"
#: Header that names the task, for tools that route or inspect records.
TASK_HEADER = "x-celeriac-task"


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


def unpack_wire(
    value: bytes, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[WireMessage, EnvelopeInfo]:
    """Read a record value into a wire message."""
    return json_envelope.unpack_wire(value, limits=limits)


def unpack(
    value: bytes,
    *,
    accept: Iterable[str] = DEFAULT_ACCEPT,
    limits: Limits = DEFAULT_LIMITS,
) -> TaskMessage:
    """Read a record value straight into a task message."""
    wire, _ = unpack_wire(value, limits=limits)
    return decode_task(wire, accept=accept, limits=limits)
