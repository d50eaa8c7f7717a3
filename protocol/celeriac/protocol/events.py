"""Monitoring events (SPEC.md §7): flat JSON objects on the ``celeryev`` exchange."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError

__all__ = ["EVENT_EXCHANGE", "Event", "parse_event", "routing_key_for"]

EVENT_EXCHANGE = "celeryev"
_CORE = ("type", "hostname", "timestamp", "utcoffset", "pid", "clock")


def routing_key_for(event_type: str) -> str:
    """The routing key an event is published with: ``task-succeeded`` -> ``task.succeeded``."""
    return event_type.replace("-", ".")


@dataclass(frozen=True, slots=True)
class Event:
    """One event: the fields every event has, and the rest by name."""

    type: str
    hostname: str
    timestamp: float
    utcoffset: int = 0
    pid: int = 0
    clock: int | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The event body."""
        body: dict[str, Any] = {
            "type": self.type,
            "hostname": self.hostname,
            "timestamp": self.timestamp,
            "utcoffset": self.utcoffset,
            "pid": self.pid,
            "clock": self.clock,
        }
        body.update(self.fields)
        return body


def parse_event(body: Any) -> Event:
    """Validate an event body."""
    if not isinstance(body, Mapping):
        raise ValidationError("event", "must be a mapping")
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValidationError("event.type", "must be a non-empty string")
    hostname = body.get("hostname")
    if not isinstance(hostname, str):
        raise ValidationError("event.hostname", "must be a string")
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise ValidationError("event.timestamp", "must be a number (Unix seconds)")
    for key in ("utcoffset", "pid"):
        if not isinstance(body.get(key, 0), int):
            raise ValidationError(f"event.{key}", "must be an integer")
    clock = body.get("clock")
    if clock is not None and not isinstance(clock, int):
        raise ValidationError("event.clock", "must be an integer or null")
    if kind.startswith("task-") and not isinstance(body.get("uuid"), str):
        raise ValidationError("event.uuid", "a task event needs the task id")
    return Event(
        type=kind,
        hostname=hostname,
        timestamp=float(timestamp),
        utcoffset=body.get("utcoffset", 0),
        pid=body.get("pid", 0),
        clock=clock,
        fields={k: v for k, v in body.items() if k not in _CORE},
    )
