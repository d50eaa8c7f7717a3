"""The standard conformance set (interop/CONFORMANCE.md): the task calls and the conformance tasks.

A foreign client under test (``celeriac interop verify --role client``) sends :data:`CLIENT_CASES`;
a foreign worker under test (``--role worker``) implements the conformance tasks of
:data:`TASK_PARAMS` and is sent :data:`WORKER_CASES`. Cases are plain JSON-able dicts so harnesses
in any language read the same file (``celeriac interop cases --role client > cases.json``).

Keys of a case: ``name``; ``task``; ``args`` (positional) and ``kwargs``; ``options``
(relative times: ``countdown``, ``eta_in``, ``expires_in`` in seconds from the moment of sending;
``priority``, ``retries``, ``time_limit`` (hard), ``soft_time_limit``); ``canvas`` (``link``,
``chain``, ``group``, ``chord``) with ``link``/``steps``/``members``/``body``; ``result``: the
value the call returns (``status`` when it is not SUCCESS, ``exception`` the ``exc_type`` the
verifying worker stores); ``sections`` of SPEC.md it exercises; ``report`` marks ``read_back``,
the call in which a client reports the results it read (``verify --execute``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BIG_INT",
    "CLIENT_CASES",
    "JSON_TYPES",
    "TASK_PARAMS",
    "UNICODE_TEXT",
    "WORKER_CASES",
    "bind",
    "cases_for",
    "expected_messages",
    "identify",
]

#: The conformance tasks and their parameter names, in order. A positional call binds to these.
TASK_PARAMS: dict[str, tuple[str, ...]] = {
    "interop.add": ("x", "y"),  # returns x + y
    "interop.echo": ("tag", "value"),  # returns value; tag names the case
    "interop.fail": ("message",),  # raises an error carrying message
    "interop.sleep": ("seconds",),  # sleeps, returns seconds
    "interop.xsum": ("values",),  # returns sum(values): the chord body
}

JSON_TYPES: dict[str, Any] = {
    "int": 42,
    "negative": -7,
    "float": 2.5,
    "string": "text",
    "true": True,
    "false": False,
    "null": None,
    "list": [1, "two", 3.5, None],
    "object": {"nested": {"deep": [{"k": "v"}]}},
    "empty_list": [],
    "empty_object": {},
}
UNICODE_TEXT = "Grüße, 世界 ✓ — 🎉 \\ \" '"
#: 2**53 + 1: the first integer a double cannot hold (JSON does not limit integers; §4.1).
BIG_INT = 9007199254740993


#: add(1, 1) | add(10) | add(100) = 112: the chain both roles send.
_CHAIN_STEPS = [
    {"task": "interop.add", "args": [1, 1]},
    {"task": "interop.add", "args": [10]},
    {"task": "interop.add", "args": [100]},
]


def _add(name: str, x: int, y: int, *, sections: Sequence[str], **extra: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": name,
        "task": "interop.add",
        "args": [x, y],
        "kwargs": {},
        "options": {},
        "result": x + y,
        "sections": list(sections),
    }
    case.update(extra)
    return case


def _echo(tag: str, value: Any, *, sections: Sequence[str], **extra: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": tag,
        "task": "interop.echo",
        "args": [tag, value],
        "kwargs": {},
        "options": {},
        "result": value,
        "sections": list(sections),
    }
    case.update(extra)
    return case


CLIENT_CASES: list[dict[str, Any]] = [
    _add("plain_args", 2, 3, sections=["2.2", "2.4", "2.5"]),
    {
        "name": "kwargs",
        "task": "interop.add",
        "args": [],
        "kwargs": {"x": 4, "y": 5},
        "options": {},
        "result": 9,
        "sections": ["2.5"],
    },
    _echo("json_types", JSON_TYPES, sections=["2.5", "4.1"]),
    _echo("unicode", UNICODE_TEXT, sections=["2.5", "4.1"]),
    _echo("big_int", BIG_INT, sections=["2.5", "4.1"]),
    _add("countdown", 10, 5, sections=["2.2", "2.3"], options={"countdown": 2}),
    _add(
        "eta_expires",
        20,
        5,
        sections=["2.2", "2.3", "2.4"],
        options={"eta_in": 1, "expires_in": 300},
    ),
    _echo("priority", 7, sections=["2.4", "6.2", "6.3"], options={"priority": 7}),
    _echo("retries", 2, sections=["2.2", "2.9"], options={"retries": 2}),
    _echo(
        "time_limits",
        30,
        sections=["2.2"],
        options={"time_limit": 30, "soft_time_limit": 20},
    ),
    _add(
        "link",
        1,
        2,
        sections=["2.6", "2.7", "2.8"],
        canvas="link",
        link={"task": "interop.add", "args": [100]},
    ),
    {
        "name": "chain",
        "task": "interop.add",
        "args": [1, 1],
        "kwargs": {},
        "options": {},
        "canvas": "chain",
        "steps": _CHAIN_STEPS,
        "result": 112,
        "sections": ["2.6", "2.7", "2.8"],
    },
    {
        "name": "group",
        "task": "interop.add",
        "args": [],
        "kwargs": {},
        "options": {},
        "canvas": "group",
        "members": [
            {"task": "interop.add", "args": [3, 3]},
            {"task": "interop.add", "args": [4, 4]},
        ],
        "result": [6, 8],
        "sections": ["2.2", "2.8"],
    },
    {
        "name": "chord",
        "task": "interop.add",
        "args": [],
        "kwargs": {},
        "options": {},
        "canvas": "chord",
        "members": [
            {"task": "interop.add", "args": [5, 5]},
            {"task": "interop.add", "args": [6, 6]},
        ],
        "body": {"task": "interop.xsum", "args": []},
        "result": 22,
        "sections": ["2.6", "2.7", "2.8"],
    },
    {
        "name": "fail",
        "task": "interop.fail",
        "args": ["boom"],
        "kwargs": {},
        "options": {},
        "status": "FAILURE",
        "exception": "ValueError",
        "result": None,
        "sections": ["2.5", "7.3"],
    },
    {
        "name": "sleep",
        "task": "interop.sleep",
        "args": [0.2],
        "kwargs": {},
        "options": {},
        "result": 0.2,
        "sections": ["2.5"],
    },
    _echo(
        "expired",
        1,
        sections=["2.3", "2.9", "7.3"],
        options={"expires_in": -60},
        status="REVOKED",
        exception="TaskRevokedError",
        result=None,
    ),
    {
        # Sent last, once the client has read the results of the others (needs --execute):
        # echo("read_back", {case: {"status": ..., "result": value} or {"status": ...,
        # "exc_type": ...}}) for every case it sent; checked by client.read_back.
        "name": "read_back",
        "task": "interop.echo",
        "args": ["read_back", {}],
        "kwargs": {},
        "options": {},
        "report": True,
        "result": None,
        "sections": ["7.2", "7.3", "8"],
    },
]

#: What a Celeriac client sends to a foreign worker (``--role worker``).
WORKER_CASES: list[dict[str, Any]] = [
    _add("plain_args", 2, 3, sections=["2.5", "7.2"]),
    {
        "name": "kwargs",
        "task": "interop.add",
        "args": [],
        "kwargs": {"x": 4, "y": 5},
        "options": {},
        "result": 9,
        "sections": ["2.5", "7.2"],
    },
    _echo("json_types", JSON_TYPES, sections=["4.1", "7.2"]),
    _echo("unicode", UNICODE_TEXT, sections=["4.1", "7.2"]),
    _echo("big_int", BIG_INT, sections=["4.1", "7.2"]),
    _add("countdown", 10, 5, sections=["2.3", "2.9", "7.2"], options={"countdown": 2}),
    _echo(
        "expired",
        1,
        sections=["2.9", "7.3", "8"],
        options={"expires_in": -60},
        status="REVOKED",
        result=None,
    ),
    {
        "name": "fail",
        "task": "interop.fail",
        "args": ["boom"],
        "kwargs": {},
        "options": {},
        "status": "FAILURE",
        "result": None,
        "sections": ["7.2", "7.3", "8"],
    },
    {
        "name": "sleep",
        "task": "interop.sleep",
        "args": [0.3],
        "kwargs": {},
        "options": {},
        "result": 0.3,
        "sections": ["7.2", "8"],
    },
    {
        "name": "chain",
        "task": "interop.add",
        "args": [1, 1],
        "kwargs": {},
        "options": {},
        "canvas": "chain",
        "steps": _CHAIN_STEPS,
        "result": 112,
        "sections": ["2.6", "2.8", "7.2"],
    },
]


def cases_for(role: str, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """A deep copy of the set for ``role`` (``client`` or ``worker``), limited to ``names``."""
    source = CLIENT_CASES if role == "client" else WORKER_CASES
    if names:
        unknown = set(names) - {c["name"] for c in source}
        if unknown:
            raise ValueError(f"no such {role} case(s): {', '.join(sorted(unknown))}")
        source = [c for c in source if c["name"] in names]
    return copy.deepcopy(source)


def bind(task: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments by parameter name (positional ones bound to :data:`TASK_PARAMS` names)."""
    names = TASK_PARAMS.get(task, ())
    bound: dict[str, Any] = {}
    for i, value in enumerate(args):
        bound[names[i] if i < len(names) else f"*{i}"] = value
    bound.update(kwargs)
    return bound


def expected_messages(case: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The task messages a client puts on the queue for ``case``: (task, bound arguments)."""
    kind = case.get("canvas")
    if kind in ("group", "chord"):
        return [(m["task"], bind(m["task"], m["args"], {})) for m in case["members"]]
    if kind == "chain":
        first = case["steps"][0]
        return [(first["task"], bind(first["task"], first["args"], {}))]
    return [(case["task"], bind(case["task"], case["args"], case["kwargs"]))]


def _key(task: str, bound: Mapping[str, Any]) -> str:
    # echo calls are told apart by their tag alone, so a value that arrives altered (a big
    # integer rounded by a client) is still matched to its case, and then fails the value check.
    if task == "interop.echo" and isinstance(bound.get("tag"), str):
        return f"{task}|tag={bound['tag']}"
    return f"{task}|{json.dumps(bound, sort_keys=True, default=str)}"


def identify(
    cases: Sequence[Mapping[str, Any]], task: str, bound: Mapping[str, Any]
) -> tuple[Mapping[str, Any], int] | None:
    """The case (and index of the message within it) that a received call belongs to."""
    key = _key(task, bound)
    for case in cases:
        for index, (t, b) in enumerate(expected_messages(case)):
            if _key(t, b) == key:
                return case, index
    return None
