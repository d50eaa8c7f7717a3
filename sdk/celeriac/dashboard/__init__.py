"""A live web dashboard for workers, tasks and queues, fed by events (``celeriac dashboard``)."""

from __future__ import annotations

from .service import ActionError, Dashboard, parse_arguments
from .state import State
from .web import LOOPBACK_HOSTS, create_app

__all__ = ["ActionError", "Dashboard", "State", "create_app", "parse_arguments", "serve"]


def serve(
    dashboard: Dashboard, host: str = "127.0.0.1", port: int = 5555, token: str | None = None
) -> None:
    """Start ``dashboard``'s threads and serve its page on ``host:port`` until interrupted."""
    import uvicorn

    # Bound to loopback, answer only to loopback names: a rebound DNS name cannot reach it.
    allowed = LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else None
    dashboard.start()
    try:
        uvicorn.run(
            create_app(dashboard, token, allowed_hosts=allowed),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    finally:
        dashboard.stop()
