"""What ``App.send_task`` does to a call before it is a message on the wire: the router's queue,
the call options checked against the worker's ranges, ``before_task_publish``; and the exit
hook that waits for what windowed producers sent."""

from __future__ import annotations

import atexit
import dataclasses
import fnmatch
import logging
import re
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from celeriac.protocol import TaskMessage
from celeriac.transports import Transport

from .. import signals
from ..bounds import check_count, check_delay, check_seconds, check_when
from ..config import ConfigError
from .loading import _import_object

if TYPE_CHECKING:
    from . import App


_WINDOWED: weakref.WeakSet[Transport] = weakref.WeakSet()


def _flush_at_exit(transport: Transport) -> None:
    """Publishes a windowed producer has not seen acknowledged are waited for at exit."""
    if not _WINDOWED:
        atexit.register(_flush_windowed)
    _WINDOWED.add(transport)


def _flush_windowed() -> None:
    for transport in list(_WINDOWED):
        try:
            transport.close()  # waits for every thread's unacknowledged publishes first
        except Exception as exc:
            logging.getLogger("celeriac").error(
                "at exit, tasks sent through %s were not all acknowledged by the broker: %s",
                type(transport).__name__,
                exc,
            )


def _apply_router(
    router: Any,
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
    app: App,
) -> str | None:
    """The queue one of ``task_routes``' routers gives ``name``, if any."""
    if isinstance(router, str):
        router = _import_object(router)  # "module:function", as Celery allows
    if callable(router):
        target = router(name, args, kwargs, options, task=app._tasks.get(name))
    elif isinstance(router, Mapping) or _pairs(router):
        target = None
        # A mapping, or a list of (pattern, route) pairs: Celery's way to keep them in order.
        for pattern, value in router.items() if isinstance(router, Mapping) else router:
            if isinstance(pattern, re.Pattern):
                matched = pattern.match(name) is not None
            else:
                matched = fnmatch.fnmatchcase(name, str(pattern))
            if matched:
                target = value
                break
    else:
        raise ConfigError(f"task_routes: {router!r} is not a mapping or a router function")
    if target is None or isinstance(target, str):
        return target
    if isinstance(target, Mapping):
        queue = target.get("queue") or target.get("routing_key")
        return None if queue is None else str(getattr(queue, "name", queue))
    raise ConfigError(f"task_routes: route {target!r} for {name} is not a queue name or a dict")


def _pairs(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(item, list | tuple) and len(item) == 2 for item in value
    )


def _before_publish(message: TaskMessage, queue: str) -> TaskMessage:
    """Send ``before_task_publish`` as Celery does; headers its receivers add (tracing ids,
    say) go out with the message."""
    headers = message.headers.to_wire()
    given = dict(headers)
    signals.before_task_publish.send(
        sender=message.task,
        body=(list(message.args), dict(message.kwargs), message.embed.to_wire()),
        exchange="",
        routing_key=queue,
        headers=headers,
        properties=message.properties.to_wire(),
        declare=[],
        retry_policy=None,
    )
    added = {k: v for k, v in headers.items() if k not in given}
    if not added:
        return message
    extra = {**message.headers.extra, **added}
    return message.replace(headers=dataclasses.replace(message.headers, extra=extra))


def _sigs(value: Any) -> Sequence[Mapping[str, Any]] | None:
    if value is None:
        return None
    return [value] if isinstance(value, Mapping) else list(value)


#: The call options ``_checked_call_options`` reads.
_CHECKED_OPTIONS = frozenset(
    ("countdown", "eta", "expires", "time_limit", "soft_time_limit", "retries")
)


def _checked_call_options(
    name: str, options: Mapping[str, Any]
) -> tuple[datetime | None, datetime | None, tuple[float | None, float | None], int]:
    """A call's ETA, expiry, ``(time_limit, soft_time_limit)`` and retries, each checked against
    the ranges the worker enforces (``celeriac.bounds``), naming the option that is out."""
    if options.keys().isdisjoint(_CHECKED_OPTIONS):  # the plain delay(): nothing to check
        return None, None, (None, None), 0
    what = f"{name}: "
    countdown = options.get("countdown")
    if countdown is not None:
        eta: datetime | None = datetime.now(UTC) + timedelta(
            seconds=check_delay(countdown, what + "countdown")
        )
    else:
        eta = check_when(options.get("eta"), what + "eta")
    expires = check_when(options.get("expires"), what + "expires", relative=True)
    limits = (
        check_seconds(options.get("time_limit"), what + "time_limit"),
        check_seconds(options.get("soft_time_limit"), what + "soft_time_limit"),
    )
    retries = check_count(options.get("retries", 0), what + "retries") or 0
    return eta, expires, limits, retries


def _argument_path(path: str) -> str:
    """``body[0][1]`` -> ``args[1]``, ``body[1].x`` -> ``kwargs.x``: the user's own names."""
    if path.startswith("body[0]"):
        return "args" + path[len("body[0]") :]
    if path.startswith("body[1]"):
        return "kwargs" + path[len("body[1]") :]
    return path
