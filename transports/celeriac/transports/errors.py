"""Transport errors: each says which broker, what failed, and what to check."""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "MissingDependency",
    "TransportError",
    "UnknownScheme",
]


class TransportError(Exception):
    """Something went wrong moving messages in or out of a broker."""


class BrokerUnavailable(TransportError):
    """The broker could not be reached or refused us (host down, wrong credentials, ...)."""


class UnknownScheme(TransportError):
    """A broker URL whose scheme no installed transport serves."""


class MissingDependency(TransportError):
    """A transport whose client library is not installed."""
