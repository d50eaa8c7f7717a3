"""Protocol v1 (legacy, SPEC.md §3): telling it from v2 and lifting it to a v2 message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .errors import ValidationError
from .message import Properties, TaskMessage
from .validate import parse_embed, parse_headers

__all__ = ["is_v1_body", "lift_v1"]

# v1 body keys that become v2 headers of the same name.
_SAME_NAME = (
    "lang task id root_id parent_id group group_index shadow eta expires retries timelimit "
    "argsrepr kwargsrepr origin"
).split()


def is_v1_body(headers: Mapping[str, Any], body: Any) -> bool:
    """True when the message is v1 (or Celery's v1/v2 "hybrid"): the body is a mapping."""
    return isinstance(body, Mapping) and ("task" in body or "args" in body)


def lift_v1(
    headers: Mapping[str, Any],
    body: Mapping[str, Any],
    properties: Properties,
    content_type: str,
    compression: str | None,
) -> TaskMessage:
    """Map a v1 body (and any headers it came with) onto a v2 :class:`TaskMessage`."""
    merged: dict[str, Any] = {k: body[k] for k in _SAME_NAME if body.get(k) is not None}
    if "group" not in merged and body.get("taskset") is not None:
        merged["group"] = body["taskset"]
    # Headers win over the body, as Celery's hybrid reader has it.
    merged.update((k, v) for k, v in headers.items() if k != "compression")
    if "task" not in merged:
        raise ValidationError("body.task", "a v1 message needs a task name")
    if "id" not in merged:
        raise ValidationError("body.id", "a v1 message needs a task id")
    merged.setdefault("root_id", merged["id"])
    args = body.get("args", [])
    kwargs = body.get("kwargs", {})
    if not isinstance(args, list | tuple):
        raise ValidationError("body.args", "must be a list")
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValidationError("body.kwargs", "must be a mapping with string keys")
    embed = parse_embed(
        {k: body.get(k) for k in ("callbacks", "errbacks", "chord")},
        path="body",
    )
    parsed = parse_headers(merged, path="body")
    if body.get("utc", True) is not False:
        # v1 writes naive times and says with ``utc`` whether they are UTC (the default).
        parsed = replace(
            parsed,
            eta=_as_utc(parsed.eta),
            expires=_as_utc(parsed.expires),
        )
    return TaskMessage(
        headers=parsed,
        args=tuple(args),
        kwargs=dict(kwargs),
        embed=embed,
        properties=properties,
        content_type=content_type,
        compression=compression,
        protocol=1,
    )


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
