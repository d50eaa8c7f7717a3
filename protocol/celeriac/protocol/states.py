"""Task states (SPEC.md §6.1) and the sets Celery groups them in."""

from __future__ import annotations

__all__ = [
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "IGNORED",
    "PENDING",
    "PROPAGATE_STATES",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "UNREADY_STATES",
    "precedence",
]

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
RETRY = "RETRY"
IGNORED = "IGNORED"

ALL_STATES = frozenset(
    (PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, REVOKED, REJECTED, RETRY, IGNORED)
)
READY_STATES = frozenset((SUCCESS, FAILURE, REVOKED))
UNREADY_STATES = frozenset((PENDING, RECEIVED, STARTED, REJECTED, RETRY))
EXCEPTION_STATES = frozenset((RETRY, FAILURE, REVOKED))
PROPAGATE_STATES = frozenset((FAILURE, REVOKED))

# Highest first; a custom state (any other name) ranks where ``None`` stands.
_PRECEDENCE = (SUCCESS, FAILURE, None, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING)


def precedence(state: str) -> int:
    """Rank of a state: lower is stronger (a SUCCESS is never overwritten by a STARTED)."""
    try:
        return _PRECEDENCE.index(state)
    except ValueError:
        return _PRECEDENCE.index(None)
