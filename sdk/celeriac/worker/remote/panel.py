"""The control panel: runs each request meant for this worker and sends its reply."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from celeriac.protocol import WireMessage
from celeriac.protocol.control import ControlRequest, reply_queue
from celeriac.protocol.serializers import dumps
from celeriac.transports import Transport

from .control import ControlCommands
from .controlled import CommandError, Controlled, Handler
from .inspection import InspectCommands

log = logging.getLogger("celeriac.worker")


class ControlPanel(InspectCommands, ControlCommands):
    """Carries out control commands for one worker and sends the replies."""

    def __init__(self, worker: Controlled) -> None:
        self.worker = worker
        self.started = time.monotonic()
        #: Marks the ping this worker sends at start to find another worker with its name.
        self.probe = uuid.uuid4().hex
        self.handlers: dict[str, Handler] = {
            "ping": self.ping,
            "stats": self.stats,
            "active": self.active,
            "reserved": self.reserved,
            "scheduled": self.scheduled,
            "registered": self.registered,
            "active_queues": self.active_queues,
            "revoked": self.revoked,
            "query_task": self.query_task,
            "revoke": self.revoke,
            "terminate": self.terminate,
            "rate_limit": self.rate_limit,
            "time_limit": self.time_limit,
            "add_consumer": self.add_consumer,
            "cancel_consumer": self.cancel_consumer,
            "pool_grow": self.pool_grow,
            "pool_shrink": self.pool_shrink,
            "shutdown": self.shutdown,
            "enable_events": self.enable_events,
            "disable_events": self.disable_events,
            "heartbeat": self.heartbeat,
            "conf": self.conf,
            "report": self.report,
            "clock": self.clock,
            "memsample": self.memsample,
            "memdump": self.memdump,
            "dump_tasks": self.dump_tasks,
            "objgraph": self.objgraph,
            "autoscale": self.autoscale,
            "pool_restart": self.pool_restart,
            "election": self.election,
            "revoke_by_stamped_headers": self.revoke_by_stamped_headers,
        }

    # -- dispatch --------------------------------------------------------------------------------
    def handle(self, request: ControlRequest, transport: Transport) -> None:
        """Run a request meant for this worker and reply if the sender asked for one."""
        probe = request.arguments.get("celeriac_probe") if request.method == "ping" else None
        if probe is not None and probe == self.probe:
            return  # our own "is this name taken?" ping: only another worker may answer it
        handler = self.handlers.get(request.method)
        if handler is None:
            reply: Any = {"error": f"unknown control command {request.method!r}"}
            log.warning("%s: %s", self.worker.hostname, reply["error"])
        else:
            try:
                reply = handler(**dict(request.arguments))
            except TypeError as exc:
                reply = {"error": f"bad arguments for {request.method!r}: {exc}"}
            except CommandError as exc:
                reply = {"error": str(exc)}
            except Exception as exc:  # a command must never take the worker down
                log.exception("%s: control command %r failed", self.worker.hostname, request.method)
                reply = {"error": f"{type(exc).__name__}: {exc}"}
        if request.reply_to and request.ticket:
            self._reply(request, reply, transport)

    def _reply(self, request: ControlRequest, reply: Any, transport: Transport) -> None:
        assert request.reply_to is not None
        routing_key = str(request.reply_to.get("routing_key") or "")
        body, content_type, content_encoding = dumps({self.worker.hostname: reply})
        message = WireMessage(
            body,
            content_type,
            content_encoding,
            {"ticket": request.ticket, "clock": 0},
            {"correlation_id": request.ticket},
        )
        try:
            transport.publish(reply_queue(routing_key), message)
        except Exception as exc:  # the asker went away with its queue
            log.warning("%s: reply to %s not sent: %s", self.worker.hostname, routing_key, exc)
