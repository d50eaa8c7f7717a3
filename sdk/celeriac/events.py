"""Events (SPEC.md §9): what workers and clients do, as Celery's event messages (same types and
field names) broadcast on exchange ``celeryev`` of any transport. Off by default, for speed: turn
them on with ``worker_send_task_events`` (``celeriac worker -E``), at run time with the
``enable_events`` control command, and for clients with ``task_send_sent_event``.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.serializers import dumps, loads
from celeriac.transports import Subscription, TransportError

if TYPE_CHECKING:
    from .app import App

__all__ = ["EVENT_EXCHANGE", "EventReceiver", "clock_value", "event", "send_event", "utcoffset"]

#: Celery's event exchange.
EVENT_EXCHANGE = "celeryev"
_SOFTWARE = {"sw_ident": "celeriac", "sw_ver": "0.1", "sw_sys": platform.system()}


#: This process's Lamport clock: every event sent moves it forward (``next`` on a count is
#: atomic under the GIL, so threads need no lock).
_clock = itertools.count(1)
_last_clock = 0


def clock_value() -> int:
    """The clock's last value (``inspect clock``, ``stats``)."""
    return _last_clock


def _tick() -> int:
    global _last_clock
    _last_clock = next(_clock)
    return _last_clock


def utcoffset() -> int:
    """Hours *west* of UTC, with Celery's sign (``time.timezone // 3600``, ``altzone`` under
    daylight saving time): receivers subtract it, so the opposite sign shifts every time."""
    if time.daylight and time.localtime().tm_isdst > 0:
        return time.altzone // 3600
    return time.timezone // 3600


def event(type_: str, hostname: str, **fields: Any) -> dict[str, Any]:
    """An event as Celery writes it: ``type``, ``hostname``, ``timestamp``, ``utcoffset``,
    ``pid``, ``clock``, then the type's own fields."""
    return {
        "type": type_,
        "hostname": hostname,
        "timestamp": time.time(),
        "utcoffset": utcoffset(),
        "pid": os.getpid(),
        "clock": _tick(),
        **fields,
    }


def worker_fields(active: int, processed: int) -> dict[str, Any]:
    """What worker-online/heartbeat/offline carry besides the common fields."""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = [0.0, 0.0, 0.0]
    return {"freq": 2.0, "active": active, "processed": processed, "loadavg": load, **_SOFTWARE}


def send_event(app: App, body: dict[str, Any]) -> None:
    """Broadcast one event; an event that cannot be sent is dropped (events are best effort)."""
    data, content_type, content_encoding = dumps(body)
    message = WireMessage(
        data,
        content_type,
        content_encoding,
        # Celery routes events by type on its topic exchange: "task.succeeded".
        {"hostname": body.get("hostname", ""), "routing_key": body["type"].replace("-", ".")},
        {},
    )
    try:
        app.producer().broadcast(EVENT_EXCHANGE, message)
    except TransportError:
        pass


class EventReceiver:
    """Every event broadcast from now on, as dicts (``with EventReceiver(app) as r: ...``)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._transport = app.producer()
        self._subscription: Subscription | None = None
        self._batch: list[dict[str, Any]] = []

    def __enter__(self) -> EventReceiver:
        self._subscription = self._transport.subscribe(EVENT_EXCHANGE)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def next(self, timeout: float | None = 1.0) -> dict[str, Any] | None:
        """The next event, or None after ``timeout`` seconds; unreadable ones are skipped."""
        if self._subscription is None:
            raise RuntimeError("use EventReceiver as a context manager")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._batch:
                return self._batch.pop(0)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._subscription.get(timeout=left)
            if message is None:
                return None
            try:
                body = loads(message.body, message.content_type, message.content_encoding)
            except ProtocolError:
                continue
            if isinstance(body, dict) and isinstance(body.get("type"), str):
                return body
            if isinstance(body, list):  # Celery workers send buffered task events as a list
                self._batch = [
                    e for e in body if isinstance(e, dict) and isinstance(e.get("type"), str)
                ]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            found = self.next(timeout=None)
            if found is not None:
                yield found


def render(body: dict[str, Any]) -> str:
    """One line for a terminal."""
    rest = {k: v for k, v in body.items() if k not in ("type", "hostname", "timestamp", "clock")}
    when = time.strftime("%H:%M:%S", time.localtime(float(body.get("timestamp") or 0)))
    return f"{when} {body.get('hostname', '?')} {body['type']} {json.dumps(rest, default=str)}"
