"""Topic names of the Kafka layout (SPEC.md §6.5) and the check that a queue name is legal."""

from __future__ import annotations

import re

from ..errors import TransportError

__all__ = [
    "DELAY_SUFFIX",
    "broadcast_topic",
    "check_queue_name",
    "delay_topic",
    "group_id",
]

DELAY_SUFFIX = ".delay"
_LEGAL = re.compile(r"[A-Za-z0-9._-]{1,249}")


def delay_topic(queue: str) -> str:
    """Where delayed records of ``queue`` wait until they are due."""
    return f"{queue}{DELAY_SUFFIX}"


def broadcast_topic(exchange: str) -> str:
    """The topic every subscriber of a broadcast exchange reads."""
    return f"celeriac.bcast.{exchange}"


def group_id(queue: str) -> str:
    """The consumer group that shares the work of ``queue`` (and relays its delayed records)."""
    return f"celeriac.{queue}"


def check_queue_name(name: str) -> None:
    """Refuse a name that is not a legal topic name, or one the layout reserves."""
    if not _LEGAL.fullmatch(name) or name in (".", ".."):
        raise TransportError(
            f"queue {name!r} cannot be a Kafka topic: use only ASCII letters, digits, '.', '_' "
            "and '-', at most 249 characters"
        )
    if name.endswith(DELAY_SUFFIX) or name.startswith("celeriac.bcast."):
        raise TransportError(
            f"queue {name!r}: names ending in {DELAY_SUFFIX!r} or starting with "
            "'celeriac.bcast.' are reserved by the Kafka layout; pick another name"
        )
