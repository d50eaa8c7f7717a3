"""What a broker can do natively, said honestly, so the SDK can route around the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Capabilities"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A transport's abilities. ``False`` means the SDK must not rely on it."""

    #: Messages of higher urgency are delivered first.
    priorities: bool
    #: Which end of the number range is urgent: AMQP serves higher numbers first, Kombu's Redis
    #: layout lower numbers first (SPEC.md §6.3). None when there are no priorities.
    priority_order: Literal["higher-first", "lower-first"] | None
    #: ``publish(delay=...)`` holds the message in the broker, not in worker memory.
    delayed_delivery: bool
    #: Broadcast to every subscriber is a broker primitive (not emulated with queues).
    fanout: bool
    #: Each delivery is acked on its own (not by an offset that covers earlier ones too).
    per_message_ack: bool
    #: How a delivery held by a consumer that died comes back.
    redelivery: Literal["connection", "heartbeat", "visibility-timeout", "offset"]
    #: Order of delivery within one queue (at equal priority).
    ordering: Literal["fifo", "per-partition", "best-effort"]
    #: Several processes (or machines) can share the queues.
    shared: bool = True
    #: Largest message the broker takes, in bytes; None when there is no practical limit.
    max_message_bytes: int | None = None
