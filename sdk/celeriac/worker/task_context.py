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
    h, p = msg.headers, msg.properties
    return Context(
        id=h.id,
        task=h.task,
        args=msg.args,
        kwargs=msg.kwargs,
        retries=h.retries,
        eta=h.eta,
        expires=h.expires,
        group=h.group,
        group_index=h.group_index,
        root_id=h.root_id or h.id,
        parent_id=h.parent_id,
        chord=msg.embed.chord,
        callbacks=msg.embed.callbacks,
        errbacks=msg.embed.errbacks,
        chain=msg.embed.chain,
        # As Celery's: a worker's delivery says whether it is redelivered, apply()'s is eager.
        delivery_info={
            "exchange": "",
            "routing_key": queue,
            "priority": p.priority,
            **({"is_eager": True} if is_eager else {"redelivered": False}),
        },
        hostname=hostname,
        is_eager=is_eager,
        headers=dict(h.extra),
        reply_to=p.reply_to,
        correlation_id=p.correlation_id,
        origin=h.origin,
        ignore_result=bool(h.ignore_result),
        shadow=h.shadow,
        timelimit=(h.time_limit, h.soft_time_limit),
        time_limit=h.time_limit,
        soft_time_limit=h.soft_time_limit,
        argsrepr=h.argsrepr,
        kwargsrepr=h.kwargsrepr,
        replaced_task_nesting=h.replaced_task_nesting or 0,
        stamped_headers=h.stamped_headers,
        stamps=h.stamps,
        properties={
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
