"""Remote control from a client: broadcast commands to workers (SPEC.md §10)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.control import CONTROL_EXCHANGE, REPLY_EXCHANGE, ControlRequest, reply_queue
from celeriac.protocol.serializers import dumps, loads

from .bounds import check_seconds, parse_rate

if TYPE_CHECKING:
    from .app import App

__all__ = ["Control", "Inspect", "control_message"]


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
    """``app.control``: commands every worker (or the ones named) carries out, and their
    replies (SPEC.md §10)."""

    def __init__(self, app: App) -> None:
        self.app = app
        #: This client's reply address (Kombu's mailbox ``oid``).
        self.oid = str(uuid.uuid4())
        self._lock = threading.Lock()

    def inspect(
        self,
        destination: list[str] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
        pattern: str | None = None,
    ) -> Inspect:
        """Ask workers what they do (``inspect().active()``, ``.stats()``, ...)."""
        return Inspect(self.app, destination, timeout, limit, pattern)

    def call(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
        pattern: str | None = None,
    ) -> dict[str, Any]:
        """Send a command and gather the replies for ``timeout`` seconds: ``{node: reply}``."""
        ticket = str(uuid.uuid4())
        request = ControlRequest(
            method,
            arguments or {},
            tuple(destination) if destination else None,
            pattern=pattern,
            matcher="glob" if pattern else None,
            ticket=ticket,
            reply_to={"exchange": REPLY_EXCHANGE, "routing_key": self.oid},
        )
        with self._lock:  # one reader of the reply queue at a time
            transport = self.app.producer()
            queue = reply_queue(self.oid)
            # Each time: RabbitMQ drops the queue once its consumer goes (as Kombu's does).
            transport.declare_reply_queue(queue, REPLY_EXCHANGE, self.oid)
            replies: dict[str, Any] = {}
            with transport.consumer([queue], prefetch=100) as consumer:
                transport.broadcast(CONTROL_EXCHANGE, control_message(request))
                deadline = time.monotonic() + timeout
                while (left := deadline - time.monotonic()) > 0:
                    got = consumer.fetch(100, timeout=min(left, 0.25))
                    for delivery in got:
                        m = delivery.message
                        if m is None or m.headers.get("ticket") != ticket:
                            continue  # an answer to an earlier question, or junk
                        try:
                            body = loads(m.body, m.content_type, m.content_encoding)
                        except ProtocolError:
                            continue
                        if isinstance(body, dict):
                            replies.update(body)
                    if got:
                        consumer.ack(got)
                    if limit is not None and len(replies) >= limit:
                        break
            return replies

    def ping(
        self, destination: list[str] | None = None, timeout: float = 1.0
    ) -> list[dict[str, Any]]:
        """``[{node: {"ok": "pong"}}, ...]``, as Celery's ``control.ping``."""
        answers = self.call(
            "ping",
            destination=destination,
            timeout=timeout,
            limit=len(destination) if destination else None,
        )
        return [{node: reply} for node, reply in answers.items()]

    def rate_limit(
        self,
        task_name: str,
        rate_limit: str | None,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Change a task's rate limit on the workers (``None`` lifts it); a rate a worker
        would refuse raises ValueError here, before anything is sent."""
        parse_rate(rate_limit, "rate_limit")
        return self._command(
            "rate_limit",
            {"task_name": task_name, "rate_limit": rate_limit},
            destination,
            reply,
            timeout,
        )

    def time_limit(
        self,
        task_name: str,
        soft: float | None = None,
        hard: float | None = None,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Change a task's time limits on the workers; a limit a worker would refuse raises
        ValueError here, before anything is sent."""
        check_seconds(soft, "soft")
        check_seconds(hard, "hard")
        return self._command(
            "time_limit",
            {"task_name": task_name, "soft": soft, "hard": hard},
            destination,
            reply,
            timeout,
        )

    def add_consumer(
        self,
        queue: str,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Workers start consuming ``queue`` too."""
        return self._command("add_consumer", {"queue": queue}, destination, reply, timeout)

    def cancel_consumer(
        self,
        queue: str,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Workers stop consuming ``queue``."""
        return self._command("cancel_consumer", {"queue": queue}, destination, reply, timeout)

    def pool_grow(
        self,
        n: int = 1,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        return self._command("pool_grow", {"n": n}, destination, reply, timeout)

    def pool_shrink(
        self,
        n: int = 1,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        return self._command("pool_shrink", {"n": n}, destination, reply, timeout)

    def autoscale(
        self,
        max: int,
        min: int = 1,
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Set the pool's bounds (Celery's ``autoscale``; a Celeriac worker runs at ``max``)."""
        return self._command("autoscale", {"max": max, "min": min}, destination, reply, timeout)

    def terminate(
        self,
        task_id: str | list[str],
        signal: str = "SIGTERM",
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Revoke these tasks and stop them where they run (Celery's ``terminate``: the
        ``signal`` argument is required by Celery's workers)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        arguments = {"signal": signal, "task_id": ids}
        return self._command("terminate", arguments, destination, reply, timeout)

    def shutdown(
        self, destination: list[str] | None = None, reply: bool = False, timeout: float = 1.0
    ) -> dict[str, Any] | None:
        """Warm-stop the workers."""
        return self._command("shutdown", {}, destination, reply, timeout)

    def _command(
        self,
        method: str,
        arguments: dict[str, Any],
        destination: list[str] | None,
        reply: bool,
        timeout: float,
    ) -> dict[str, Any] | None:
        if reply:
            return self.call(
                method,
                arguments,
                destination=destination,
                timeout=timeout,
                limit=len(destination) if destination else None,
            )
        self.broadcast(method, arguments, destination)
        return None

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
        self,
        task_id: str | list[str],
        terminate: bool = False,
        signal: str = "SIGTERM",
        destination: list[str] | None = None,
        reply: bool = False,
        timeout: float = 1.0,
    ) -> dict[str, Any] | None:
        """Tell every worker not to run these tasks (and to stop them, with ``terminate``)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        arguments = {"task_id": ids, "terminate": terminate, "signal": signal}
        return self._command("revoke", arguments, destination, reply, timeout)


class Inspect:
    """``app.control.inspect()``: ask workers what they do; replies gathered for ``timeout``
    seconds (or until every ``destination`` answered), as ``{node name: reply}``."""

    def __init__(
        self,
        app: App,
        destination: list[str] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
        pattern: str | None = None,
    ) -> None:
        self.app = app
        self.destination = destination
        self.timeout = timeout
        self.limit = limit or (len(destination) if destination else None)
        self.pattern = pattern

    def _request(self, method: str, **arguments: Any) -> dict[str, Any]:
        return self.app.control.call(
            method,
            arguments,
            destination=self.destination,
            timeout=self.timeout,
            limit=self.limit,
            pattern=self.pattern,
        )

    def ping(self) -> dict[str, Any]:
        return self._request("ping")

    def stats(self) -> dict[str, Any]:
        return self._request("stats")

    def active(self) -> dict[str, Any]:
        return self._request("active")

    def reserved(self) -> dict[str, Any]:
        return self._request("reserved")

    def scheduled(self) -> dict[str, Any]:
        return self._request("scheduled")

    def registered(self) -> dict[str, Any]:
        return self._request("registered")

    def active_queues(self) -> dict[str, Any]:
        return self._request("active_queues")

    def revoked(self) -> dict[str, Any]:
        return self._request("revoked")

    def query_task(self, *ids: str) -> dict[str, Any]:
        return self._request("query_task", ids=list(ids))
