"""Remote-control messages (SPEC.md §8): requests on ``celery.pidbox``, replies by ticket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError

__all__ = [
    "CONTROL_EXCHANGE",
    "REPLY_EXCHANGE",
    "ControlRequest",
    "node_queue",
    "parse_control_request",
    "reply_queue",
]

CONTROL_EXCHANGE = "celery.pidbox"
REPLY_EXCHANGE = "reply.celery.pidbox"


def node_queue(hostname: str) -> str:
    """The queue a worker node reads its control messages from."""
    return f"{hostname}.{CONTROL_EXCHANGE}"


def reply_queue(oid: str) -> str:
    """The queue a client reads replies from (bound with routing key ``oid``)."""
    return f"{oid}.{REPLY_EXCHANGE}"


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A control command: which method, its arguments, who should run it and where to reply."""

    method: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    destination: tuple[str, ...] | None = None
    pattern: str | None = None
    matcher: str | None = None
    ticket: str | None = None
    #: ``{"exchange": ..., "routing_key": ...}`` when a reply is wanted.
    reply_to: Mapping[str, str] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The request body."""
        body: dict[str, Any] = {
            "method": self.method,
            "arguments": dict(self.arguments),
            "destination": None if self.destination is None else list(self.destination),
            "pattern": self.pattern,
            "matcher": self.matcher,
        }
        if self.reply_to is not None:
            body["ticket"] = self.ticket
            body["reply_to"] = dict(self.reply_to)
        return body

    def is_for(self, hostname: str) -> bool:
        """Whether the node ``hostname`` must run this request (glob patterns only)."""
        if self.destination is not None:
            return hostname in self.destination
        if self.pattern is not None:
            from fnmatch import fnmatchcase

            return fnmatchcase(hostname, self.pattern)
        return True


def parse_control_request(body: Any) -> ControlRequest:
    """Validate a control request body."""
    if not isinstance(body, Mapping):
        raise ValidationError("control", "must be a mapping")
    method = body.get("method")
    if not isinstance(method, str) or not method:
        raise ValidationError("control.method", "must be a non-empty string")
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        raise ValidationError("control.arguments", "must be a mapping")
    destination = body.get("destination")
    if destination is not None:
        if not isinstance(destination, list | tuple) or not all(
            isinstance(d, str) for d in destination
        ):
            raise ValidationError("control.destination", "must be a list of node names or null")
        destination = tuple(destination)
    for key in ("pattern", "matcher", "ticket"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ValidationError(f"control.{key}", "must be a string or null")
    reply_to = body.get("reply_to")
    if reply_to is not None and (
        not isinstance(reply_to, Mapping)
        or not isinstance(reply_to.get("exchange"), str)
        or not isinstance(reply_to.get("routing_key"), str)
    ):
        raise ValidationError("control.reply_to", "must be {exchange, routing_key} or null")
    return ControlRequest(
        method=method,
        arguments=arguments,
        destination=destination,
        pattern=body.get("pattern"),
        matcher=body.get("matcher"),
        ticket=body.get("ticket"),
        reply_to=reply_to,
    )
