"""What a running task sees of its call: the ``Context`` built from its message, the worker's
``Request`` view of it, and ``task.request`` set while the call's hooks and signals run."""

from __future__ import annotations

import socket
from typing import Any

from celeriac.protocol import TaskMessage

from ..task import Context, Task, _request
from .request import Request

__all__ = ["HOSTNAME", "CurrentRequest", "context_for", "request_for"]

HOSTNAME = f"celeriac@{socket.gethostname()}"


def context_for(
    msg: TaskMessage, queue: str, is_eager: bool = False, hostname: str = HOSTNAME
) -> Context:
    """The ``task.request`` of a call of ``msg`` delivered from ``queue``."""
    h, p, embed = msg.headers, msg.properties, msg.embed
    # Positional, in the order of Context's fields (tests/sdk/test_worker_fast_paths.py pins
    # it): a worker builds one per task, and 34 keyword arguments cost twice the rest.
    return Context(
        h.id,
        h.task,
        msg.args,
        msg.kwargs,
        h.retries,
        h.eta,
        h.expires,
        h.group,
        h.group_index,
        h.root_id or h.id,
        h.parent_id,
        embed.chord,
        embed.callbacks,
        embed.errbacks,
        embed.chain,
        # As Celery's: a worker's delivery says whether it is redelivered, apply()'s is eager.
        {"exchange": "", "routing_key": queue, "priority": p.priority, "is_eager": True}
        if is_eager
        else {"exchange": "", "routing_key": queue, "priority": p.priority, "redelivered": False},
        hostname,
        is_eager,
        dict(h.extra),
        p.reply_to,
        p.correlation_id,
        h.origin,
        bool(h.ignore_result),
        h.shadow,
        (h.time_limit, h.soft_time_limit),
        h.time_limit,
        h.soft_time_limit,
        h.argsrepr,
        h.kwargsrepr,
        h.replaced_task_nesting or 0,
        h.stamped_headers,
        h.stamps,
        {
            "correlation_id": p.correlation_id,
            "reply_to": p.reply_to,
            "priority": p.priority,
            "delivery_mode": p.delivery_mode,
            **p.extra,
        },
    )


def request_for(
    msg: TaskMessage, queue: str, hostname: str = HOSTNAME, task: Task[Any, Any] | None = None
) -> Request:
    """The worker's view of a received message (what ``task_received`` receivers get)."""
    return Request(msg, task, queue, hostname)


class CurrentRequest:
    """``task.request`` is the call's while its signals and hooks run, as in Celery. A class
    rather than a generator context manager: it wraps every call a worker runs."""

    __slots__ = ("request", "token")

    def __init__(self, request: Context) -> None:
        self.request = request

    def __enter__(self) -> None:
        self.token = _request.set(self.request)

    def __exit__(self, *exc: object) -> None:
        _request.reset(self.token)
