"""The Redis envelope (SPEC.md §5.3): a JSON envelope pushed onto a list named after the queue.

Priorities use Kombu's sub-queues: the list ``<queue>\\x06\\x16<step>`` for steps 3, 6 and 9,
and the plain ``<queue>`` list for step 0. Lower steps are served first.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from ..message import TaskMessage
from . import json_envelope
from .json_envelope import EnvelopeInfo, pack_wire, unpack, unpack_wire

__all__ = [
    "DEFAULT_PRIORITY_STEPS",
    "PRIORITY_SEP",
    "EnvelopeInfo",
    "list_key",
    "pack",
    "pack_wire",
    "priority_step",
    "unpack",
    "unpack_wire",
]

PRIORITY_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)


def priority_step(priority: int | None, steps: Sequence[int] = DEFAULT_PRIORITY_STEPS) -> int:
    """The sub-queue step a priority falls in: the largest step not above it (clamped 0..9)."""
    if not isinstance(priority, int) or isinstance(priority, bool):
        return steps[0]
    priority = min(max(priority, 0), 9)
    return steps[max(bisect_right(steps, priority) - 1, 0)]


def list_key(
    queue: str, priority: int | None = None, steps: Sequence[int] = DEFAULT_PRIORITY_STEPS
) -> str:
    """The Redis list that holds ``queue``'s messages of this priority."""
    step = priority_step(priority, steps)
    return queue if step == steps[0] else f"{queue}{PRIORITY_SEP}{step}"


def pack(
    message: TaskMessage,
    queue: str = "celery",
    *,
    exchange: str = "",
    routing_key: str | None = None,
    delivery_tag: str | None = None,
    serializer: str | None = None,
    compression: str | None = None,
) -> bytes:
    """The bytes to LPUSH onto ``list_key(queue, message.properties.priority)``."""
    return json_envelope.pack(
        message,
        exchange=exchange,
        routing_key=routing_key if routing_key is not None else queue,
        delivery_tag=delivery_tag,
        serializer=serializer,
        compression=compression,
    )
