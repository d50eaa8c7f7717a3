"""Checks of one message a client put on a broker: envelope, properties, headers, body; then
those of the call it is (:mod:`.expected`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from celeriac.protocol import DEFAULT_LIMITS, Limits, ProtocolError, WireMessage, decode_task
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.v1 import is_v1_body
from celeriac.protocol.validate import parse_time
from celeriac.protocol.wire import decode_body

from ..cases import bind, identify
from .catalog import (
    _DEFAULTED,
    _ISOFORMAT,
    _UUID,
    EMBED_KEYS,
    ENVELOPE_FIELDS,
    HEADER_RULES,
    KNOWN_CONTENT,
    Outcome,
)
from .collector import _Collector, _kind
from .expected import _case_checks, _read_back
from .received import RawMessage


def _header_type_ok(rule: str, value: Any) -> bool:
    if rule == "string":
        return isinstance(value, str)
    if rule == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if rule == "bool":
        return isinstance(value, bool)
    if rule == "pair":
        return (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(
                v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value
            )
        )
    if rule == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if rule == "object":
        return isinstance(value, dict)
    return False


def _envelope(
    raw: RawMessage, c: _Collector, limits: Limits
) -> tuple[WireMessage, dict[str, Any]] | None:
    size = len(raw.data)
    if not c.add(
        "envelope.size",
        "envelope",
        size <= limits.max_message_bytes,
        f"{size} bytes, more than the limit of {limits.max_message_bytes}",
    ):
        return None
    if raw.envelope == "amqp":
        amqp_props = dict(raw.amqp_properties)
        try:
            wire = amqp_envelope.unpack_wire(raw.data, amqp_props)
        except ProtocolError as exc:
            c.add("envelope.parse", exc.path, False, exc.reason)
            return None
        c.add("envelope.parse", "properties", True)
        return wire, amqp_props
    try:
        env = orjson.loads(raw.data)
    except orjson.JSONDecodeError as exc:
        c.add("envelope.parse", "envelope", False, f"not JSON: {exc}")
        return None
    if not isinstance(env, dict):
        c.add("envelope.parse", "envelope", False, f"a JSON {_kind(env)}, not an object")
        return None
    for key in ENVELOPE_FIELDS:
        c.add("envelope.field", f"envelope.{key}", key in env, "missing", key in _DEFAULTED)
    try:
        wire, _info = json_envelope.unpack_wire(raw.data, limits=limits)
    except ProtocolError as exc:
        c.add("envelope.parse", exc.path, False, exc.reason)
        return None
    c.add("envelope.parse", "envelope", True)
    found_props = env.get("properties")
    props: dict[str, Any] = found_props if isinstance(found_props, dict) else {}
    p = "envelope.properties"
    encoding = props.get("body_encoding")
    c.add(
        "envelope.body_encoding",
        f"{p}.body_encoding",
        encoding == "base64",
        "missing" if "body_encoding" not in props else f"is {encoding!r}",
        encoding is None or (isinstance(encoding, str) and encoding.lower() == "utf-8"),
    )
    tag = props.get("delivery_tag")
    c.add(
        "envelope.delivery_tag",
        f"{p}.delivery_tag",
        isinstance(tag, str) and bool(_UUID.match(tag)),
        f"is {tag!r}",
    )
    info = props.get("delivery_info")
    if not isinstance(info, dict):
        c.add("envelope.delivery_info", f"{p}.delivery_info", False, f"is {_kind(info)}")
    else:
        ok = isinstance(info.get("exchange"), str) and info.get("routing_key") == raw.queue
        c.add(
            "envelope.delivery_info",
            f"{p}.delivery_info",
            ok,
            f"exchange {info.get('exchange')!r}, routing_key {info.get('routing_key')!r}"
            f" (queue {raw.queue!r})",
        )
    prio = props.get("priority")
    c.add(
        "envelope.priority",
        f"{p}.priority",
        isinstance(prio, int) and not isinstance(prio, bool),
        "missing" if "priority" not in props else f"is {prio!r}",
    )
    if raw.list_key is not None:
        p_int = prio if isinstance(prio, int) and not isinstance(prio, bool) else 0
        step = max(s for s in (0, 3, 6, 9) if s <= max(0, min(9, p_int)))
        want = raw.queue if step == 0 else f"{raw.queue}\x06\x16{step}"
        c.add(
            "redis.list_key",
            "redis.key",
            raw.list_key == want,
            f"in {raw.list_key!r}, expected {want!r}",
        )
    return wire, props


def _properties(
    raw: RawMessage, props: Mapping[str, Any], headers: Mapping[str, Any], c: _Collector
) -> None:
    base = "properties" if raw.envelope == "amqp" else "envelope.properties"
    corr = props.get("correlation_id")
    if "correlation_id" not in props:
        near = [k for k in props if k.lower().replace("_", "") == "correlationid"]
        c.add(
            "properties.correlation_id",
            f"{base}.correlation_id",
            False,
            "missing" + (f" (found {near[0]!r})" if near else ""),
        )
    else:
        c.add(
            "properties.correlation_id",
            f"{base}.correlation_id",
            corr == headers.get("id"),
            f"{corr!r} is not the id {headers.get('id')!r}",
        )
    reply = props.get("reply_to")
    if "reply_to" not in props:
        c.add("properties.reply_to", f"{base}.reply_to", False, "missing")
    else:
        c.add(
            "properties.reply_to", f"{base}.reply_to", isinstance(reply, str), f"is {_kind(reply)}"
        )
    mode = props.get("delivery_mode")
    c.add(
        "properties.delivery_mode",
        f"{base}.delivery_mode",
        mode in (1, 2),
        "missing" if "delivery_mode" not in props else f"is {mode!r}",
    )


def _headers(headers: Mapping[str, Any], c: _Collector, case: Mapping[str, Any] | None) -> None:
    for name, rule, nullable in HEADER_RULES:
        path = f"headers.{name}"
        if name not in headers:
            c.add("headers.present", path, False, "missing", name not in ("task", "id"))
            continue
        c.add("headers.present", path, True)
        value = headers[name]
        ok = (value is None and nullable) or (value is not None and _header_type_ok(rule, value))
        want = rule + (" or null" if nullable else "")
        c.add("headers.type", path, ok, f"is {_kind(value)} {value!r:.60}, expected {want}")
    names = [n for n, _r, _null in HEADER_RULES]
    if all(n in headers for n in names):
        order = [k for k in headers if k in names]
        c.add("headers.order", "headers", order == names, f"order is {order}")
    else:
        c.add("headers.order", "headers", None)
    task_id = headers.get("id")
    c.add(
        "headers.id",
        "headers.id",
        isinstance(task_id, str) and bool(_UUID.match(task_id)),
        f"{task_id!r} is not a lowercase hyphenated UUID",
    )
    top_level = case is None or case.get("canvas") not in ("chain_step",)
    if top_level and not headers.get("parent_id"):
        root = headers.get("root_id")
        c.add("headers.root_id", "headers.root_id", root == task_id, f"is {root!r}, not the id")
    lang = headers.get("lang")
    c.add(
        "headers.lang",
        "headers.lang",
        isinstance(lang, str) and bool(re.fullmatch(r"[a-z]{1,8}", lang)),
        f"is {lang!r}",
    )
    for name in ("eta", "expires"):
        value = headers.get(name)
        path = f"headers.{name}"
        if value is None:
            c.add("headers.time", path, None)
            continue
        try:
            parsed = parse_time(value, path)
        except ProtocolError as exc:
            c.add("headers.time", path, False, f"{value!r}: {exc.reason}")
            continue
        if parsed is not None and parsed.utcoffset() is None:
            c.add("headers.time", path, False, f"{value!r} has no offset (naive)")
        elif not (isinstance(value, str) and _ISOFORMAT.match(value)):
            # Z, milli- or nanoseconds: Celery's maybe_iso8601 reads them all.
            c.add(
                "headers.time",
                path,
                False,
                f"{value!r} is not as datetime.isoformat() writes it",
                tolerated=True,
            )
        else:
            c.add("headers.time", path, True)
    for name in ("argsrepr", "kwargsrepr"):
        value = headers.get(name)
        if isinstance(value, str):
            c.add("headers.repr", f"headers.{name}", len(value) <= 1024, f"{len(value)} characters")


def _body_shape(body: Any, c: _Collector) -> bool:
    ok = isinstance(body, list) and len(body) == 3
    if not c.add("body.shape", "body", ok, f"a {_kind(body)}, not [args, kwargs, embed]"):
        return False
    c.add("body.shape", "body[0]", isinstance(body[0], list), f"args is {_kind(body[0])}")
    c.add("body.shape", "body[1]", isinstance(body[1], dict), f"kwargs is {_kind(body[1])}")
    embed = body[2]
    if not isinstance(embed, dict):
        tolerated = embed is None  # Celery reads a null embed as no embed
        reason = f"embed is {_kind(embed)}, not the object of §2.6"
        c.add("body.shape", "body[2]", False, reason, tolerated)
        return True
    for key in EMBED_KEYS:
        # Celery reads the embed with .get(): a missing key is no callbacks, no chain, ...
        c.add("body.shape", f"body[2].{key}", key in embed, "missing from the embed", True)
    return True


def check_message(
    raw: RawMessage,
    cases: Sequence[Mapping[str, Any]],
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[list[Outcome], tuple[str, int] | None]:
    """Every check of one received message; also which case (and member) it was."""
    c = _Collector()
    got = _envelope(raw, c, limits)
    if got is None:
        return c.outcomes, None
    wire, props = got
    ctype = wire.content_type
    c.add("content.type", "content-type", ctype in KNOWN_CONTENT, f"{ctype!r} is not known")
    if ctype in KNOWN_CONTENT:
        # Kombu gives the bytes to the content type's decoder whatever the encoding says.
        c.add(
            "content.encoding",
            "content-encoding",
            wire.content_encoding == KNOWN_CONTENT[ctype],
            f"is {wire.content_encoding!r}, expected {KNOWN_CONTENT[ctype]!r}",
            tolerated=True,
        )
    try:
        body = decode_body(wire, limits=limits)
    except ProtocolError as exc:
        c.add("body.decode", exc.path, False, exc.reason)
        return c.outcomes, None
    except RecursionError:
        c.add("body.decode", "body", False, "nested too deeply")
        return c.outcomes, None
    c.add("body.decode", "body", True)
    headers: Mapping[str, Any] = wire.headers if isinstance(wire.headers, Mapping) else {}
    is_v2 = "task" in headers and isinstance(body, list)
    is_v1 = not is_v2 and is_v1_body(headers, body)
    c.add(
        "message.version",
        "headers.task",
        is_v2,
        "protocol v1 (§3): receivers lift it to v2" if is_v1 else "not a v2 message",
        tolerated=is_v1,
    )
    lifted = None
    try:
        lifted = decode_task(wire, limits=limits)
        c.add("message.accepted", "message", True)
    except ProtocolError as exc:
        c.add("message.accepted", exc.path, False, exc.reason)
    if is_v1 and lifted is not None:
        # v1 has no header table to check: the lifted message's headers and body stand in.
        headers = lifted.headers.to_wire()
        body = [list(lifted.args), dict(lifted.kwargs), lifted.embed.to_wire()]
    elif not is_v2:
        return c.outcomes, None  # neither v2 nor a v1 a receiver could lift
    full_props = dict(props)
    if raw.envelope == "amqp":
        full_props = {k: v for k, v in props.items() if v is not None}
    _properties(raw, full_props, headers, c)
    if not _body_shape(body, c):
        return c.outcomes, None
    task = headers.get("task")
    found = (
        identify(cases, str(task), bind(str(task), body[0], body[1]))
        if isinstance(body[0], list) and isinstance(body[1], dict)
        else None
    )
    if found is None:
        c.add("case.identified", "body", False, f"{task}{body[0]!r:.80} is not a call of the set")
        if not is_v1:
            _headers(headers, c, None)
        return c.outcomes, None
    case, index = found
    c.case = str(case["name"])
    for o in c.outcomes:
        o.case = c.case
    c.add("case.identified", "body", True)
    if not is_v1:
        _headers(headers, c, case)
    if case.get("report"):
        _read_back(body, cases, c)
    else:
        _case_checks(case, index, raw, headers, full_props, body, c)
    return c.outcomes, (str(case["name"]), index)
