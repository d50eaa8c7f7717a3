"""The dead-letter copy of a delivery (SPEC.md §11.3), the same for every transport."""

from __future__ import annotations

from celeriac.protocol import WireMessage

from .base import REJECT_REASON_HEADER, Delivery

__all__ = ["dead_letter_message"]


def dead_letter_message(delivery: Delivery, reason: str) -> WireMessage:
    """The message to put on the dead-letter queue: the original with the reason added, or,
    when the envelope could not be read at all, its raw bytes wrapped as opaque data."""
    if delivery.message is not None:
        m = delivery.message
        headers = {**m.headers, REJECT_REASON_HEADER: reason}
        return WireMessage(m.body, m.content_type, m.content_encoding, headers, m.properties)
    return WireMessage(
        body=delivery.raw or b"",
        content_type="application/octet-stream",
        content_encoding="binary",
        headers={REJECT_REASON_HEADER: reason},
        properties={},
    )
