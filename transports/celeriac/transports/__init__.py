"""Transports: one package per broker, each moving envelopes in and out of it (I/O only).

``open_transport(url)`` finds the transport for the URL's scheme among the installed ones
(entry point group ``celeriac.transports``) and connects it.
"""

from .base import (
    REJECT_REASON_HEADER,
    Consumer,
    Delivery,
    QueueSpec,
    Subscription,
    Transport,
    dead_letter_queue,
)
from .capabilities import Capabilities
from .errors import BrokerUnavailable, MissingDependency, TransportError, UnknownScheme
from .registry import available_schemes, open_transport, redact_url, resolve

__all__ = [
    "REJECT_REASON_HEADER",
    "BrokerUnavailable",
    "Capabilities",
    "Consumer",
    "Delivery",
    "MissingDependency",
    "QueueSpec",
    "Subscription",
    "Transport",
    "TransportError",
    "UnknownScheme",
    "available_schemes",
    "dead_letter_queue",
    "open_transport",
    "redact_url",
    "resolve",
]
