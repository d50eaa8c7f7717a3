"""The one error family of the protocol layer: every failure names a field path and a reason."""

from __future__ import annotations

__all__ = [
    "ContentDisallowed",
    "DecodeError",
    "LimitExceeded",
    "ProtocolError",
    "UnsupportedCompression",
    "UnsupportedContentType",
    "ValidationError",
]


class ProtocolError(ValueError):
    """A message, envelope or record that cannot be read or written.

    ``path`` is where the problem is (``"headers.eta"``, ``"body[1]"``, ``"envelope"``);
    ``reason`` says what is wrong in words a person can act on.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[ProtocolError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))


class DecodeError(ProtocolError):
    """Bytes that are not valid for their declared encoding (bad JSON, bad base64, ...)."""


class ValidationError(ProtocolError):
    """Well-formed data of the wrong shape: a missing field, a wrong type, a bad value."""


class UnsupportedContentType(ProtocolError):
    """A content type (serializer) this codec does not know."""


class UnsupportedCompression(ProtocolError):
    """A compression method this codec does not know or cannot load."""


class ContentDisallowed(ProtocolError):
    """A known content type the receiver refuses, such as pickle when it is not accepted."""


class LimitExceeded(ProtocolError):
    """Input beyond a configured limit (size, nesting depth, decompressed size)."""
