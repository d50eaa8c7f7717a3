"""Remote control from a client: broadcast commands to workers (SPEC.md §10)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from celeriac.protocol import WireMessage
from celeriac.protocol.control import CONTROL_EXCHANGE, ControlRequest
from celeriac.protocol.serializers import dumps

if TYPE_CHECKING:
    from .app import App

__all__ = ["Control", "control_message"]


def control_message(request: ControlRequest) -> WireMessage:
    """A control request as a wire message for ``celery.pidbox``."""
    body, content_type, content_encoding = dumps(request.to_wire())
    return WireMessage(
        body,
        content_type,
        content_encoding,
        {"clock": 0, "expires": 0},
        {"correlation_id": request.ticket or str(uuid.uuid4())},
    )


class Control:
    """``app.control``: commands every worker (or the ones named) carries out."""

    def __init__(self, app: App) -> None:
        self.app = app

    def broadcast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        destination: list[str] | None = None,
    ) -> None:
        """Send a command without waiting for replies."""
        request = ControlRequest(
            method, arguments or {}, tuple(destination) if destination else None
        )
        self.app.producer().broadcast(CONTROL_EXCHANGE, control_message(request))

    def revoke(
        self, task_id: str | list[str], terminate: bool = False, signal: str = "SIGTERM"
    ) -> None:
        """Tell every worker not to run these tasks (and to stop them, with ``terminate``)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        self.broadcast("revoke", {"task_id": ids, "terminate": terminate, "signal": signal})
