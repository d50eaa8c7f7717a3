"""Sorting botocore's exceptions: an unreachable endpoint, a queue that is gone, the rest."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

__all__ = ["CONNECTION_ERRORS", "error_code", "is_missing_queue", "is_stale_receipt"]

#: Errors that mean the endpoint did not answer (down, restarting, unreachable).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)

_MISSING_QUEUE = frozenset(
    ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue")
)
_STALE_RECEIPT = frozenset(
    ("ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight")
)


def error_code(exc: BaseException) -> str:
    """The service's error code of a ClientError ("" for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_missing_queue(exc: BaseException) -> bool:
    """The queue does not exist (never declared, deleted, or the server lost it)."""
    return error_code(exc) in _MISSING_QUEUE


def is_stale_receipt(exc: BaseException) -> bool:
    """A receipt handle that no longer holds the message (settled, expired, server restarted)."""
    return error_code(exc) in _STALE_RECEIPT or is_missing_queue(exc)
