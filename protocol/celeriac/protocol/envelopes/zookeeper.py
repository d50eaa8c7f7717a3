"""The ZooKeeper envelope (SPEC.md §6.6): a queue node's data is the JSON envelope's bytes.

Node names follow kazoo's ``Queue`` recipe, as Kombu writes them: ``entry-<PPP>-<sequence>``
where ``PPP`` is 9 minus the message priority, so sorting names serves higher priorities first.
Celeriac's own nodes (delayed items, broadcasts) carry a time in their name. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

from .json_envelope import EnvelopeInfo, pack, pack_wire, unpack, unpack_consumed, unpack_wire

__all__ = [
    "BROADCAST_PREFIX",
    "DELAYED_PREFIX",
    "ENTRY_PREFIX",
    "MAX_PRIORITY",
    "EnvelopeInfo",
    "broadcast_prefix",
    "broadcast_time_ms",
    "delayed_prefix",
    "entry_prefix",
    "mark_redelivered",
    "message_priority",
    "node_priority",
    "pack",
    "pack_wire",
    "parse_delayed",
    "parse_entry",
    "sequence_of",
    "unpack",
    "unpack_consumed",
    "unpack_wire",
]

#: kazoo's ``Queue.prefix``: every queue item node's name starts with it.
ENTRY_PREFIX = "entry-"
DELAYED_PREFIX = "due-"
BROADCAST_PREFIX = "msg-"
#: Message priorities are clamped to 0..MAX_PRIORITY, as Kombu's virtual channels do.
MAX_PRIORITY = 9
# ZooKeeper appends a ten-digit, zero-padded counter to a sequential node's name.
_SEQUENCE_DIGITS = 10


def message_priority(properties: dict[str, Any] | Any) -> int:
    """The message priority of a wire message's properties, clamped to 0..9 (0 when absent)."""
    value = properties.get("priority") if isinstance(properties, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return min(max(value, 0), MAX_PRIORITY)


def node_priority(priority: int) -> int:
    """The three-digit number in a node name: lower names are served first (kazoo's order)."""
    return MAX_PRIORITY - min(max(priority, 0), MAX_PRIORITY)


def entry_prefix(priority: int) -> str:
    """The name to create a sequential queue item under, for a message ``priority``."""
    return f"{ENTRY_PREFIX}{node_priority(priority):03d}-"


def sequence_of(name: str) -> int | None:
    """The counter ZooKeeper appended to a sequential node's name, or None if it has none."""
    tail = name[-_SEQUENCE_DIGITS:]
    if len(name) <= _SEQUENCE_DIGITS or not tail.isdigit():
        return None
    return int(tail)


def parse_entry(name: str) -> tuple[int, int] | None:
    """``(node priority, sequence)`` of a queue item's name; None for any other child."""
    if not name.startswith(ENTRY_PREFIX):
        return None
    middle, _, tail = name[len(ENTRY_PREFIX) :].rpartition("-")
    if not middle.isdigit() or not tail.isdigit():
        return None
    return int(middle), int(tail)


def delayed_prefix(due_ms: int, priority: int) -> str:
    """The name of a delayed item: due time (ms since the epoch) first, so names sort by it."""
    return f"{DELAYED_PREFIX}{due_ms:015d}-{node_priority(priority):03d}-"


def parse_delayed(name: str) -> tuple[int, int] | None:
    """``(due_ms, node priority)`` of a delayed item's name; None for any other child."""
    if not name.startswith(DELAYED_PREFIX):
        return None
    parts = name[len(DELAYED_PREFIX) :].split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def broadcast_prefix(sent_ms: int) -> str:
    """The name of a broadcast node: its send time, so old ones can be cleaned up."""
    return f"{BROADCAST_PREFIX}{sent_ms:015d}-"


def broadcast_time_ms(name: str) -> int | None:
    """When a broadcast node was sent (ms since the epoch); None for any other child."""
    if not name.startswith(BROADCAST_PREFIX):
        return None
    stamp = name[len(BROADCAST_PREFIX) :].partition("-")[0]
    return int(stamp) if stamp.isdigit() else None


def mark_redelivered(data: bytes) -> bytes:
    """The envelope with ``properties.delivery_info.redelivered`` set (Kombu's flag on restore).

    Bytes that are not a JSON envelope are returned unchanged: they are dead-lettered anyway.
    """
    try:
        env = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    properties = env.get("properties") if isinstance(env, dict) else None
    if not isinstance(properties, dict):
        return data
    info = properties.get("delivery_info")
    properties["delivery_info"] = {**(info if isinstance(info, dict) else {}), "redelivered": True}
    return orjson.dumps(env, option=orjson.OPT_NON_STR_KEYS)
