"""The task message of protocol v2 (SPEC.md §2): immutable types and their wire form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .compression import resolve as resolve_compression
from .ids import new_id
from .serializers import get_serializer

__all__ = [
    "DELIVERY_PERSISTENT",
    "Embed",
    "Properties",
    "TaskHeaders",
    "TaskMessage",
    "new_task_message",
]

DELIVERY_PERSISTENT = 2
_ARGSREPR_MAX = 1024
_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class TaskHeaders:
    """The v2 headers. Field names are the wire names, except ``timelimit``, which is split."""

    task: str
    id: str
    lang: str = "py"
    shadow: str | None = None
    eta: datetime | None = None
    expires: datetime | None = None
    group: str | None = None
    group_index: int | None = None
    retries: int = 0
    #: Hard limit in seconds; the first item of the wire ``timelimit`` pair.
    time_limit: float | None = None
    #: Soft limit in seconds; the second item of the wire ``timelimit`` pair.
    soft_time_limit: float | None = None
    root_id: str | None = None
    parent_id: str | None = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    origin: str | None = None
    #: ``None`` when the sender did not say (Celery's ``send_task``); workers read it as False.
    ignore_result: bool | None = False
    replaced_task_nesting: int = 0
    stamped_headers: tuple[str, ...] | None = None
    stamps: Mapping[str, Any] = field(default_factory=dict)
    #: Headers this spec does not name (custom headers, ``compression`` is not kept here).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The headers as they go on the wire, in the order Celery writes them."""
        wire: dict[str, Any] = {
            "lang": self.lang,
            "task": self.task,
            "id": self.id,
            "shadow": self.shadow,
            "eta": None if self.eta is None else self.eta.isoformat(),
            "expires": None if self.expires is None else self.expires.isoformat(),
            "group": self.group,
            "group_index": self.group_index,
            "retries": self.retries,
            "timelimit": [self.time_limit, self.soft_time_limit],
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "argsrepr": self.argsrepr,
            "kwargsrepr": self.kwargsrepr,
            "origin": self.origin,
            "ignore_result": self.ignore_result,
            "replaced_task_nesting": self.replaced_task_nesting,
            "stamped_headers": None if self.stamped_headers is None else list(self.stamped_headers),
            "stamps": dict(self.stamps),
        }
        if self.extra:
            wire.update(self.extra)
        return wire


@dataclass(frozen=True, slots=True)
class Properties:
    """Message properties (AMQP basic properties, or their copy in a JSON envelope)."""

    correlation_id: str | None = None
    reply_to: str | None = None
    priority: int | None = None
    delivery_mode: int = DELIVERY_PERSISTENT
    #: Other properties (``expiration``, ``app_id``, ...), kept so they survive a round trip.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The properties as a flat mapping; absent ones are left out."""
        wire: dict[str, Any] = {}
        if self.correlation_id is not None:
            wire["correlation_id"] = self.correlation_id
        if self.reply_to is not None:
            wire["reply_to"] = self.reply_to
        wire["delivery_mode"] = self.delivery_mode
        if self.priority is not None:
            wire["priority"] = self.priority
        if self.extra:
            wire.update(self.extra)
        return wire


@dataclass(frozen=True, slots=True)
class Embed:
    """The third item of the body: what runs after the task (signatures as plain mappings)."""

    callbacks: tuple[Mapping[str, Any], ...] | None = None
    errbacks: tuple[Mapping[str, Any], ...] | None = None
    #: Remaining chain steps, last one first to run (Celery pops from the end).
    chain: tuple[Mapping[str, Any], ...] | None = None
    chord: Mapping[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The embed mapping with all four keys, as Celery writes it."""
        return {
            "callbacks": None if self.callbacks is None else list(self.callbacks),
            "errbacks": None if self.errbacks is None else list(self.errbacks),
            "chain": None if self.chain is None else list(self.chain),
            "chord": self.chord,
        }


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """One task call: headers, properties and the body ``[args, kwargs, embed]``.

    ``content_type`` and ``compression`` record how the body was (or will be) encoded, so a
    message decoded and packed again keeps its serializer.
    """

    headers: TaskHeaders
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    embed: Embed = field(default_factory=Embed)
    properties: Properties = field(default_factory=Properties)
    content_type: str = "application/json"
    compression: str | None = None
    #: 2 for a v2 message; 1 when the message was read as protocol v1 and lifted to v2.
    protocol: int = 2

    @property
    def id(self) -> str:
        """The task id."""
        return self.headers.id

    @property
    def task(self) -> str:
        """The registered task name."""
        return self.headers.task

    def body(self) -> list[Any]:
        """The body as a list ``[args, kwargs, embed]``, ready for a serializer."""
        return [list(self.args), dict(self.kwargs), self.embed.to_wire()]

    def replace(self, **changes: Any) -> TaskMessage:
        """A copy with some fields changed (``headers=``, ``args=``, ...)."""
        return replace(self, **changes)


def _saferepr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a user object whose __repr__ fails must not block sending
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    if len(text) > _ARGSREPR_MAX:
        text = text[: _ARGSREPR_MAX - 3] + "..."
    return text


def _as_signatures(
    items: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None,
) -> tuple[Mapping[str, Any], ...] | None:
    if items is None:
        return None
    if isinstance(items, Mapping):
        return (items,)
    return tuple(items)


def new_task_message(
    task: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    task_id: str | None = None,
    eta: datetime | None = None,
    expires: datetime | None = None,
    priority: int | None = None,
    retries: int = 0,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    shadow: str | None = None,
    group: str | None = None,
    group_index: int | None = None,
    root_id: str | None = None,
    parent_id: str | None = None,
    origin: str | None = None,
    ignore_result: bool = False,
    reply_to: str | None = None,
    link: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    link_error: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    chain: Sequence[Mapping[str, Any]] | None = None,
    chord: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    serializer: str = "application/json",
    compression: str | None = None,
    delivery_mode: int = DELIVERY_PERSISTENT,
) -> TaskMessage:
    """Build a v2 task message with Celery's defaults (``root_id`` is the task id, and so on).

    ``headers`` adds custom headers, as ``apply_async(headers=...)`` does in Celery.
    """
    task_id = task_id or new_id()
    kwargs = {} if kwargs is None else kwargs
    args = tuple(args)
    return TaskMessage(
        headers=TaskHeaders(
            task=task,
            id=task_id,
            shadow=shadow,
            eta=eta,
            expires=expires,
            group=group,
            group_index=group_index,
            retries=retries,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            root_id=root_id or task_id,
            parent_id=parent_id,
            argsrepr=_saferepr(args),
            kwargsrepr=_saferepr(kwargs),
            origin=origin,
            ignore_result=ignore_result,
            extra=dict(headers) if headers else _EMPTY,
        ),
        args=args,
        kwargs=kwargs,
        embed=Embed(
            callbacks=_as_signatures(link),
            errbacks=_as_signatures(link_error),
            chain=None if chain is None else tuple(chain),
            chord=chord,
        ),
        properties=Properties(
            correlation_id=task_id,
            reply_to=reply_to,
            priority=priority,
            delivery_mode=delivery_mode,
        ),
        content_type=get_serializer(serializer).content_type,
        compression=None if compression is None else resolve_compression(compression).content_type,
    )
