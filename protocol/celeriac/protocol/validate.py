"""Turning untrusted mappings into typed message parts; every error names its field path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .errors import ValidationError
from .message import DELIVERY_PERSISTENT, Embed, Properties, TaskHeaders

__all__ = ["parse_body", "parse_embed", "parse_headers", "parse_properties", "parse_time"]

# Headers handled by the codec itself rather than carried as message fields.
_CODEC_HEADERS = frozenset(("compression",))
_KNOWN_HEADERS = frozenset(
    (
        "lang task id shadow eta expires group group_index retries timelimit root_id parent_id "
        "argsrepr kwargsrepr origin ignore_result replaced_task_nesting stamped_headers stamps"
    ).split()
)
# The extended calendar form of ISO 8601 (as the headers schema has it); week and ordinal dates,
# which Python's parser would also take, are refused so every implementation reads the same set.
_TWO = "[0-5][0-9]"
_ISO_DATETIME = re.compile(
    "(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    f"(?:[T ](?:[01][0-9]|2[0-3])(?::{_TWO}(?::{_TWO}(?:[.,][0-9]+)?)?)?"
    f"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?{_TWO})?)?)?"
)
_KNOWN_PROPERTIES = frozenset(("correlation_id", "reply_to", "priority", "delivery_mode"))
_NOT_EXTRA = _KNOWN_HEADERS | _CODEC_HEADERS
_OPTIONAL_STRINGS = ("shadow", "group", "root_id", "parent_id", "origin", "argsrepr", "kwargsrepr")
_STR_OR_NONE = frozenset((str, type(None)))
#: The embed of a plain call (no callbacks, errbacks, chain or chord): immutable, so shared.
_NO_EMBED = Embed()


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _str(h: Mapping[str, Any], key: str, path: str, required: bool = False) -> str | None:
    value = h.get(key)
    if value is None:
        if required:
            raise ValidationError(f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{path}.{key}", f"must be a string, not {_type_name(value)}")
    if required and not value:
        raise ValidationError(f"{path}.{key}", "must not be empty")
    return value


def _int(h: Mapping[str, Any], key: str, path: str, default: int | None) -> int | None:
    value = h.get(key)
    if value is None:
        return default
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{path}.{key}", f"must be an integer, not {_type_name(value)}")
    return value


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValidationError(path, f"must be a number or null, not {_type_name(value)}")
    if value < 0:
        raise ValidationError(path, "must not be negative")
    return value


def parse_time(value: Any, path: str) -> datetime | None:
    """Read an ISO 8601 date-time (``eta``, ``expires``); ``None`` stays ``None``."""
    if value is None or value == "":  # Celery's worker reads an empty eta as no eta
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValidationError(path, f"must be an ISO 8601 string, not {_type_name(value)}")
    if _ISO_DATETIME.fullmatch(value) is None:
        raise ValidationError(path, f"is not an ISO 8601 date-time: {value[:64]!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(path, f"is not an ISO 8601 date-time: {value[:64]!r}") from None


def parse_headers(h: Any, path: str = "headers") -> TaskHeaders:
    """Validate v2 headers and build :class:`TaskHeaders`. Only ``task`` and ``id`` are required."""
    if type(h) is not dict and not isinstance(h, Mapping):
        raise ValidationError(path, f"must be a mapping, not {_type_name(h)}")
    get = h.get
    task = get("task")
    task_id = get("id")
    if type(task) is not str or type(task_id) is not str or not task or not task_id:
        task = _str(h, "task", path, required=True)
        task_id = _str(h, "id", path, required=True)
    assert task is not None and task_id is not None
    # Every message reads these: one check of their types together, then a precise error
    # from the field-by-field check only when one of them is wrong.
    lang, shadow, group = get("lang"), get("shadow"), get("group")
    root_id, parent_id, origin = get("root_id"), get("parent_id"), get("origin")
    argsrepr, kwargsrepr = get("argsrepr"), get("kwargsrepr")
    strings = (lang, shadow, group, root_id, parent_id, origin, argsrepr, kwargsrepr)
    if not _STR_OR_NONE.issuperset(map(type, strings)):
        for key in ("lang", *_OPTIONAL_STRINGS):
            _str(h, key, path)
    timelimit = get("timelimit")
    time_limit = soft_time_limit = None
    if timelimit is not None:
        if not isinstance(timelimit, list | tuple) or len(timelimit) != 2:
            raise ValidationError(f"{path}.timelimit", "must be a pair [hard, soft]")
        if timelimit[0] is not None:
            time_limit = _number(timelimit[0], f"{path}.timelimit[0]")
        if timelimit[1] is not None:
            soft_time_limit = _number(timelimit[1], f"{path}.timelimit[1]")
    retries = get("retries")
    if type(retries) is not int:
        retries = _int(h, "retries", path, 0)
    if retries is not None and retries < 0:
        raise ValidationError(f"{path}.retries", "must not be negative")
    group_index = get("group_index")
    if group_index is not None and type(group_index) is not int:
        group_index = _int(h, "group_index", path, None)
    nesting = get("replaced_task_nesting")
    if type(nesting) is not int:
        nesting = _int(h, "replaced_task_nesting", path, 0)
    stamped = get("stamped_headers")
    if stamped is not None and (
        not isinstance(stamped, list | tuple) or not all(isinstance(s, str) for s in stamped)
    ):
        raise ValidationError(f"{path}.stamped_headers", "must be a list of strings or null")
    stamps = get("stamps")
    if stamps is None:
        stamps = {}
    elif type(stamps) is not dict and not isinstance(stamps, Mapping):
        raise ValidationError(f"{path}.stamps", f"must be a mapping, not {_type_name(stamps)}")
    ignore_result = get("ignore_result", False)
    if ignore_result is not None and not isinstance(ignore_result, bool):
        raise ValidationError(
            f"{path}.ignore_result", f"must be a boolean, not {_type_name(ignore_result)}"
        )
    eta, expires = get("eta"), get("expires")
    if _NOT_EXTRA.issuperset(h):
        extra: dict[str, Any] = {}
    else:
        extra = {k: v for k, v in h.items() if k not in _NOT_EXTRA}
    # Positional, in the order of TaskHeaders' fields: 21 keyword arguments cost more than
    # the rest of this function (tests/protocol/test_decode_positional.py pins the order).
    return TaskHeaders(
        task,
        task_id,
        lang or "py",
        shadow,
        None if eta is None else parse_time(eta, f"{path}.eta"),
        None if expires is None else parse_time(expires, f"{path}.expires"),
        group,
        group_index,
        retries or 0,
        time_limit,
        soft_time_limit,
        root_id,
        parent_id,
        argsrepr,
        kwargsrepr,
        origin,
        ignore_result,
        nesting or 0,
        None if stamped is None else tuple(stamped),
        stamps,
        extra,
    )


def parse_properties(p: Any, path: str = "properties") -> Properties:
    """Validate message properties and build :class:`Properties`."""
    if p is None:
        return Properties()
    if type(p) is not dict and not isinstance(p, Mapping):
        raise ValidationError(path, f"must be a mapping, not {_type_name(p)}")
    get = p.get
    raw = get("priority")
    priority: int | None = (
        raw if raw is None or type(raw) is int else _int(p, "priority", path, None)
    )
    if priority is not None and not 0 <= priority <= 255:
        raise ValidationError(f"{path}.priority", "must be between 0 and 255")
    raw = get("delivery_mode")
    delivery_mode = raw if type(raw) is int else _int(p, "delivery_mode", path, DELIVERY_PERSISTENT)
    if delivery_mode not in (1, 2):
        raise ValidationError(f"{path}.delivery_mode", "must be 1 (transient) or 2 (persistent)")
    correlation_id, reply_to = get("correlation_id"), get("reply_to")
    if not _STR_OR_NONE.issuperset((type(correlation_id), type(reply_to))):
        _str(p, "correlation_id", path)
        _str(p, "reply_to", path)
    if _KNOWN_PROPERTIES.issuperset(p):
        extra: dict[str, Any] = {}
    else:
        extra = {k: v for k, v in p.items() if k not in _KNOWN_PROPERTIES}
    # Positional, in the order of Properties' fields (as TaskHeaders above).
    return Properties(correlation_id, reply_to, priority, delivery_mode, extra)


def _signatures(value: Any, path: str) -> tuple[Mapping[str, Any], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise ValidationError(
            path, f"must be a list of signatures or null, not {_type_name(value)}"
        )
    for i, sig in enumerate(value):
        _signature(sig, f"{path}[{i}]")
    return tuple(value)


def _signature(sig: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(sig, Mapping):
        raise ValidationError(path, f"a signature must be a mapping, not {_type_name(sig)}")
    if not isinstance(sig.get("task"), str):
        raise ValidationError(f"{path}.task", "a signature needs a task name (string)")
    return sig


def parse_embed(e: Any, path: str = "body[2]") -> Embed:
    """Validate the embed mapping (callbacks, errbacks, chain, chord); null means empty."""
    if e is None:
        return _NO_EMBED
    if type(e) is not dict and not isinstance(e, Mapping):
        raise ValidationError(path, f"must be a mapping or null, not {_type_name(e)}")
    chord = e.get("chord")
    if (
        chord is None
        and e.get("callbacks") is None
        and e.get("errbacks") is None
        and (e.get("chain") is None)
    ):
        return _NO_EMBED
    return Embed(
        callbacks=_signatures(e.get("callbacks"), f"{path}.callbacks"),
        errbacks=_signatures(e.get("errbacks"), f"{path}.errbacks"),
        chain=_signatures(e.get("chain"), f"{path}.chain"),
        chord=None if chord is None else _signature(chord, f"{path}.chord"),
    )


def parse_body(body: Any) -> tuple[tuple[Any, ...], dict[str, Any], Embed]:
    """Validate a v2 body ``[args, kwargs, embed]``."""
    if not isinstance(body, list | tuple):
        raise ValidationError(
            "body", f"must be a list [args, kwargs, embed], not {_type_name(body)}"
        )
    if len(body) != 3:
        raise ValidationError("body", f"must have 3 items [args, kwargs, embed], not {len(body)}")
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        raise ValidationError("body[0]", f"args must be a list, not {_type_name(args)}")
    if not isinstance(kwargs, dict):
        raise ValidationError("body[1]", f"kwargs must be a mapping, not {_type_name(kwargs)}")
    for key in kwargs:
        if not isinstance(key, str):
            raise ValidationError("body[1]", f"kwargs keys must be strings, not {_type_name(key)}")
    return tuple(args), kwargs, parse_embed(embed)
