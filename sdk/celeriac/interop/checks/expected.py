"""Checks of a message against the call of the set it is: its arguments, options and canvas;
and of the client's read-back report against what the worker stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from celeriac.protocol import ProtocolError
from celeriac.protocol.validate import parse_time

from ..cases import bind, expected_messages
from .catalog import SIGNATURE_KEYS
from .collector import _Collector, _kind, _same
from .received import RawMessage


def _seconds_from(value: Any, now: datetime) -> float | None:
    try:
        parsed = parse_time(value, "headers")
    except ProtocolError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - now).total_seconds()


def _signature_ok(sig: Any) -> str:
    if not isinstance(sig, dict):
        return f"a {_kind(sig)}, not a signature object"
    missing = [k for k in SIGNATURE_KEYS if k not in sig]
    return f"signature lacks {missing}" if missing else ""


def _case_checks(
    case: Mapping[str, Any],
    index: int,
    raw: RawMessage,
    headers: Mapping[str, Any],
    props: Mapping[str, Any],
    body: list[Any],
    c: _Collector,
) -> None:
    task, want = expected_messages(case)[index]
    args, kwargs, embed = body[0], body[1], body[2] if isinstance(body[2], dict) else {}
    got = bind(task, args, kwargs)
    c.add("body.arguments", "body", _same(got, want), f"arguments {got!r:.200} != {want!r:.200}")
    positional = len(case["args"]) if not case.get("canvas") else len(want)
    if positional:
        c.add(
            "body.positional",
            "body[0]",
            len(args) == positional,
            f"{len(args)} positional arguments, {positional} sent (the rest came as kwargs)",
        )
    opts = case.get("options", {})
    now = raw.received_at
    if "countdown" in opts or "eta_in" in opts:
        delay = float(opts.get("countdown", opts.get("eta_in", 0)))
        left = _seconds_from(headers.get("eta"), now)
        c.add(
            "headers.eta",
            "headers.eta",
            left is not None and -5.0 <= left <= delay + 5.0,
            f"eta {headers.get('eta')!r} is not about now + {delay} s",
        )
    if "expires_in" in opts:
        span = float(opts["expires_in"])
        left = _seconds_from(headers.get("expires"), now)
        c.add(
            "headers.expires",
            "headers.expires",
            left is not None and span - 30 <= left <= span + 5,
            f"expires {headers.get('expires')!r} is not about now + {span} s",
        )
    if "priority" in opts:
        c.add(
            "properties.priority",
            "properties.priority",
            props.get("priority") == opts["priority"],
            f"is {props.get('priority')!r}, sent {opts['priority']}",
        )
    if "retries" in opts:
        c.add(
            "headers.retries",
            "headers.retries",
            headers.get("retries") == opts["retries"],
            f"is {headers.get('retries')!r}",
        )
    if "time_limit" in opts or "soft_time_limit" in opts:
        want_tl = [opts.get("time_limit"), opts.get("soft_time_limit")]
        got_tl = headers.get("timelimit")
        c.add(
            "headers.timelimit",
            "headers.timelimit",
            isinstance(got_tl, list) and [*got_tl] == want_tl,
            f"is {got_tl!r}, expected {want_tl}",
        )
    kind = case.get("canvas")
    if kind == "link":
        cbs: Any = embed.get("callbacks")
        problem = "" if isinstance(cbs, list) and len(cbs) == 1 else f"callbacks is {cbs!r:.80}"
        if not problem:
            problem = _signature_ok(cbs[0])
        if not problem:
            link = case["link"]
            if cbs[0]["task"] != link["task"] or cbs[0]["args"] != link["args"]:
                problem = f"callback is {cbs[0]['task']}{cbs[0]['args']}"
        c.add("embed.callbacks", "body[2].callbacks", not problem, problem)
    if kind == "chain":
        steps: Any = embed.get("chain")
        rest = case["steps"][1:]
        problem = "" if isinstance(steps, list) and len(steps) == len(rest) else f"is {steps!r:.80}"
        for i, sig in enumerate(steps if not problem else []):
            problem = problem or _signature_ok(sig)
            want_step = rest[len(rest) - 1 - i]
            if not problem and sig["args"] != want_step["args"]:
                problem = f"[{i}] has args {sig['args']}, expected {want_step['args']} (last first)"
        c.add("embed.chain", "body[2].chain", not problem, problem)
    if kind in ("group", "chord"):
        ok = isinstance(headers.get("group"), str) and headers.get("group_index") == index
        c.add(
            "headers.group",
            "headers.group_index",
            ok,
            f"group {headers.get('group')!r}, group_index {headers.get('group_index')!r}",
        )
    if kind == "chord":
        chord: Any = embed.get("chord")
        problem = _signature_ok(chord)
        if not problem and chord["task"] != case["body"]["task"]:
            problem = f"chord body is {chord['task']}"
        c.add("embed.chord", "body[2].chord", not problem, problem)


def _read_back(body: list[Any], cases: Sequence[Mapping[str, Any]], c: _Collector) -> None:
    """``read_back``: what the client read of each result, against what the worker stored."""
    got = bind("interop.echo", body[0], body[1]).get("value")
    if not isinstance(got, dict):
        c.add("client.read_back", "body", False, f"the report is {_kind(got)}, not an object")
        return
    for case in cases:
        name = str(case["name"])
        if case.get("report"):
            continue
        path = f"read_back.{name}"
        entry = got.get(name)
        if not isinstance(entry, dict):
            c.add(
                "client.read_back",
                path,
                False,
                "not read back" if entry is None else "not an object",
            )
            continue
        want = case.get("status", "SUCCESS")
        status = entry.get("status")
        if status != want:
            c.add("client.read_back", path, False, f"read {status!r}, the worker stored {want}")
        elif want == "SUCCESS":
            value = entry.get("result")
            ok = _same(value, case["result"])
            c.add(
                "client.read_back", path, ok, f"read {value!r:.80}, stored {case['result']!r:.80}"
            )
        else:
            exc = entry.get("exc_type")
            ok = exc == case.get("exception")
            c.add(
                "client.read_back",
                path,
                ok,
                f"read exc_type {exc!r}, stored {case.get('exception')}",
            )
