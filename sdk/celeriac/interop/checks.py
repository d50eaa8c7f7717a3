"""Every conformance check in one place, each tied to a section of protocol/SPEC.md.

:data:`CHECKS` names the checks; :data:`HEADER_RULES`, :data:`ENVELOPE_FIELDS` and
:data:`RESULT_FIELDS` are the data they are driven by; :data:`DEVIATIONS` lists the known
deviations of foreign clients (SPEC.md Appendix B), which turn a failed check into a
``deviation`` only for the client that has it. :func:`check_message` checks one message a client
put on a broker; :func:`check_result` checks the records a worker wrote for one call.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from celeriac.protocol import DEFAULT_LIMITS, Limits, ProtocolError, WireMessage, decode_task
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.results import CELERY_EXCEPTIONS
from celeriac.protocol.v1 import is_v1_body
from celeriac.protocol.validate import parse_time
from celeriac.protocol.wire import decode_body

from .cases import bind, expected_messages, identify

__all__ = [
    "CHECKS",
    "DEVIATIONS",
    "HEADER_RULES",
    "Check",
    "Deviation",
    "Outcome",
    "RawMessage",
    "apply_deviations",
    "check_message",
    "check_result",
]

PASS, FAIL, NA, DEVIATION, WARN = "pass", "fail", "n/a", "deviation", "warn"

#: What a failed check costs, worst first (CONFORMANCE.md, "Severities").
DATA_LOSS, BREAKING, COSMETIC = "data-loss", "interop-breaking", "cosmetic"
SEVERITIES = (DATA_LOSS, BREAKING, COSMETIC)


@dataclass(frozen=True)
class Check:
    """One conformance check: its SPEC section, what it asserts, and what a failure costs.

    ``severity``: ``data-loss`` (a call, a value or a result is lost or silently altered),
    ``interop-breaking`` (Celery or a conforming peer refuses or misreads it) or ``cosmetic``
    (differs from what Celery writes, but every receiver copes).
    """

    id: str
    section: str
    title: str
    severity: str


@dataclass
class Outcome:
    """One check applied to one field of one message or record."""

    check: str
    section: str
    case: str
    path: str
    status: str
    reason: str = ""
    deviation: str = ""
    #: The number of the message (client role) or record (worker role) it was found in, from 1.
    message: int = 0
    #: Seconds from the verifier's start to this outcome (a not-applicable case: at once).
    elapsed: float = 0.0

    @property
    def severity(self) -> str:
        return CHECKS[self.check].severity if self.check in CHECKS else BREAKING

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity}


_CHECK_LIST = [
    Check("envelope.size", "§12", "the envelope is within the receiver's size limit", BREAKING),
    Check(
        "envelope.parse", "§6", "the envelope can be read (JSON object / AMQP properties)", BREAKING
    ),
    Check("envelope.field", "§6.1", "the JSON envelope has each of its five keys", BREAKING),
    Check("envelope.body_encoding", "§6.1", "properties.body_encoding is base64", BREAKING),
    Check(
        "envelope.delivery_tag", "§6.1", "properties.delivery_tag is a fresh UUID string", BREAKING
    ),
    Check(
        "envelope.delivery_info",
        "§6.1",
        "properties.delivery_info names exchange and queue",
        BREAKING,
    ),
    Check(
        "envelope.priority", "§6.1", "properties.priority is always present (an integer)", COSMETIC
    ),
    Check("redis.list_key", "§6.3", "the message sits in the list of its priority step", COSMETIC),
    Check(
        "properties.correlation_id", "§2.4", "correlation_id is present and equals the id", BREAKING
    ),
    Check("properties.reply_to", "§2.4", "reply_to is present (a string)", COSMETIC),
    Check("properties.delivery_mode", "§2.4", "delivery_mode is 1 or 2", COSMETIC),
    Check("properties.priority", "§2.4", "priority carries the requested value", BREAKING),
    Check("content.type", "§4", "the content type is a known serializer", BREAKING),
    Check(
        "content.encoding",
        "§4",
        "content encoding matches the serializer (utf-8 for JSON)",
        COSMETIC,
    ),
    Check(
        "body.decode", "§4", "the body decodes with its content type within the limits", BREAKING
    ),
    Check("message.version", "§3.2", "the message is protocol v2", BREAKING),
    Check("message.accepted", "§2", "the reference codec accepts the message", BREAKING),
    Check("headers.present", "§2.2", "the producer wrote every header of the table", COSMETIC),
    Check("headers.type", "§2.2", "each header has the JSON type of the table", BREAKING),
    Check("headers.order", "§2.2", "headers are written in the table's order", COSMETIC),
    Check("headers.id", "§2.2", "id is a 36-character lowercase hyphenated UUID", COSMETIC),
    Check("headers.root_id", "§2.2", "root_id equals id for a top-level call", COSMETIC),
    Check("headers.lang", "§2.2", "lang is a short lowercase language tag", COSMETIC),
    Check(
        "headers.time",
        "§2.3",
        "eta/expires are ISO 8601, time-zone-aware, as isoformat()",
        BREAKING,
    ),
    Check("headers.repr", "§12", "argsrepr/kwargsrepr are at most 1024 characters", COSMETIC),
    Check(
        "body.shape", "§2.5", "the body is [args, kwargs, embed] with the four embed keys", BREAKING
    ),
    Check("case.identified", "§2.5", "the call belongs to the conformance set", BREAKING),
    Check("case.received", "§2", "every call of the set arrived in time", DATA_LOSS),
    Check(
        "body.arguments", "§2.5", "the arguments arrive with their values and JSON types", DATA_LOSS
    ),
    Check("body.positional", "§2.5", "positional arguments stay positional", BREAKING),
    Check("headers.eta", "§2.3", "a countdown/eta is written as eta = send time + delay", BREAKING),
    Check("headers.expires", "§2.3", "a relative expiry is written as expires = now + n", BREAKING),
    Check("headers.retries", "§2.2", "retries carries the requested count", COSMETIC),
    Check("headers.timelimit", "§2.2", "timelimit is [hard, soft] as requested", BREAKING),
    Check("embed.callbacks", "§2.7", "link is written as a full signature in callbacks", DATA_LOSS),
    Check(
        "embed.chain", "§2.6", "a chain's remaining steps are written last step first", DATA_LOSS
    ),
    Check("headers.group", "§2.8", "group members carry group and group_index", BREAKING),
    Check("embed.chord", "§2.8", "chord members carry the body in embed.chord", DATA_LOSS),
    Check("result.present", "§7.2", "the worker wrote a result record in time", DATA_LOSS),
    Check("result.decode", "§7.2", "the record is a JSON object", BREAKING),
    Check("result.field", "§7.2", "the record has each key of §7.2", BREAKING),
    Check("result.status", "§8", "the final state is the expected one", BREAKING),
    Check("result.value", "§7.2", "the result is the task's return value, types kept", DATA_LOSS),
    Check("result.task_id", "§7.2", "task_id equals the task's id", COSMETIC),
    Check("result.date_done", "§7.2", "date_done is ISO 8601 with an offset", COSMETIC),
    Check(
        "result.traceback", "§7.2", "traceback is null on success, a string on failure", COSMETIC
    ),
    Check(
        "result.exception",
        "§7.3",
        "a failure is written as exc_type/exc_message/exc_module",
        BREAKING,
    ),
    Check("result.transitions", "§8", "states only move forward; a ready state is final", BREAKING),
    Check("result.eta_respected", "§2.9", "a task did not finish before its eta", BREAKING),
    Check(
        "client.read_back",
        "§7.2",
        "the client read each result as stored: value, exception type, REVOKED",
        DATA_LOSS,
    ),
]
CHECKS: dict[str, Check] = {c.id: c for c in _CHECK_LIST}

#: §2.2's header table, in order: (name, rule, may be null), as schema/task-headers-v2 has it.
HEADER_RULES: tuple[tuple[str, str, bool], ...] = (
    ("lang", "string", True),
    ("task", "string", False),
    ("id", "string", False),
    ("shadow", "string", True),
    ("eta", "string", True),
    ("expires", "string", True),
    ("group", "string", True),
    ("group_index", "int", True),
    ("retries", "int", True),
    ("timelimit", "pair", True),
    ("root_id", "string", True),
    ("parent_id", "string", True),
    ("argsrepr", "string", True),
    ("kwargsrepr", "string", True),
    ("origin", "string", True),
    ("ignore_result", "bool", True),
    ("replaced_task_nesting", "int", True),
    ("stamped_headers", "strings", True),
    ("stamps", "object", True),
)
ENVELOPE_FIELDS = ("body", "content-encoding", "content-type", "headers", "properties")
#: Envelope keys a receiver defaults when they are missing (§6.1): headers {}, encoding utf-8.
_DEFAULTED = frozenset(("content-encoding", "headers"))
RESULT_FIELDS = ("status", "result", "traceback", "children", "date_done", "task_id")
EMBED_KEYS = ("callbacks", "errbacks", "chain", "chord")
SIGNATURE_KEYS = ("task", "args", "kwargs", "options", "subtask_type", "immutable")
READY_STATES = frozenset(("SUCCESS", "FAILURE", "REVOKED"))
KNOWN_CONTENT = {
    "application/json": "utf-8",
    "application/x-msgpack": "binary",
    "application/x-yaml": "utf-8",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: What Python's ``datetime.isoformat()`` writes for an aware time (§2.3).
_ISOFORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$")


@dataclass(frozen=True)
class Deviation:
    """A known deviation of one client: a failed ``check`` at ``path`` (prefix) is expected."""

    client: str
    check: str
    path: str | None
    ref: str
    note: str


def _d(client: str, check: str, path: str | None, ref: str, note: str) -> Deviation:
    return Deviation(client, check, path, ref, note)


_NODE = "celery-node"
_RUST = "rusty-celery"
_V1NODE = "node-celery"
_NODE_MISSING = "celery-node writes only lang, task and id"
_RUST_HEADERS = "rusty-celery writes null or omits these headers (Appendix B.2 R1)"
#: SPEC.md Appendix B, as data. ``path`` None matches the check at any path.
DEVIATIONS: tuple[Deviation, ...] = (
    # -- celery-node 0.5.9 ------------------------------------------------------------------
    _d(_NODE, "headers.present", None, "B.1 N1", _NODE_MISSING),
    _d(_NODE, "headers.root_id", None, "B.1 N1", _NODE_MISSING),
    _d(
        _NODE,
        "properties.correlation_id",
        None,
        "B.1 N2",
        "on Redis celery-node writes correlationId/replyTo (camelCase) in properties",
    ),
    _d(
        _NODE,
        "properties.reply_to",
        None,
        "B.1 N2",
        "celery-node writes an empty reply_to (replyTo on Redis)",
    ),
    _d(_NODE, "envelope.priority", None, "B.1 N3", "celery-node writes no priority property"),
    _d(_NODE, "body.shape", "body[2]", "B.1 N4", "celery-node writes the embed as {}"),
    _d(
        _NODE,
        "body.arguments",
        None,
        "B.1 N5",
        "JavaScript numbers are doubles: integers beyond 2**53 arrive rounded",
    ),
    _d(
        _NODE,
        "result.value",
        None,
        "B.1 N5",
        "JavaScript numbers are doubles: integers beyond 2**53 come back rounded",
    ),
    _d(_NODE, "result.date_done", None, "B.1 N6", "celery-node writes date_done with Z"),
    _d(
        _NODE,
        "result.traceback",
        None,
        "B.1 N6",
        "celery-node writes the return value (or the error) as traceback",
    ),
    _d(
        _NODE,
        "result.exception",
        None,
        "B.1 N6",
        "celery-node writes a failure with result null, no exc_type",
    ),
    _d(
        _NODE,
        "result.status",
        None,
        "B.1 N7",
        "celery-node's worker ignores expires and embed (chain, callbacks)",
    ),
    _d(
        _NODE,
        "result.present",
        None,
        "B.1 N7",
        "celery-node's worker ignores the chain: later steps never run",
    ),
    _d(_NODE, "result.value", None, "B.1 N7", "celery-node's worker ignores expires"),
    _d(_NODE, "result.eta_respected", None, "B.1 N7", "celery-node's worker ignores eta"),
    # -- node-celery 0.2.8 (protocol v1) ---------------------------------------------------
    _d(_V1NODE, "envelope.priority", None, "B.3 C1", "node-celery writes no priority property"),
    _d(
        _V1NODE,
        "properties.correlation_id",
        None,
        "B.3 C2",
        "node-celery writes no correlation_id",
    ),
    _d(
        _V1NODE,
        "properties.reply_to",
        None,
        "B.3 C2",
        "node-celery writes no reply_to on AMQP",
    ),
    _d(
        _V1NODE,
        "properties.delivery_mode",
        None,
        "B.3 C2",
        "node-celery writes no delivery_mode on AMQP (messages are transient)",
    ),
    _d(
        _V1NODE,
        "body.arguments",
        None,
        "B.3 C4",
        "JavaScript numbers are doubles: integers beyond 2**53 arrive rounded",
    ),
    _d(
        _V1NODE,
        "client.read_back",
        "read_back.big_int",
        "B.3 C4",
        "JavaScript numbers are doubles: integers beyond 2**53 are read rounded",
    ),
    # -- rusty-celery 0.5.5 -----------------------------------------------------------------
    _d(_RUST, "headers.present", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.type", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.root_id", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.lang", None, "B.2 R1", _RUST_HEADERS),
    _d(_RUST, "headers.order", None, "B.2 R1", "rusty-celery writes headers in its own order"),
    _d(
        _RUST,
        "headers.time",
        None,
        "B.2 R2",
        "rusty-celery writes 9 (Redis) or 3 (AMQP) fraction digits, not isoformat()'s 6",
    ),
    _d(_RUST, "envelope.field", None, "B.2 R3", "rusty-celery's Redis envelope lacks fields"),
    _d(
        _RUST,
        "envelope.delivery_info",
        None,
        "B.2 R3",
        "rusty-celery's Redis envelope has no delivery_info",
    ),
    _d(_RUST, "envelope.priority", None, "B.2 R3", "rusty-celery's Redis envelope has no priority"),
    _d(
        _RUST,
        "properties.delivery_mode",
        None,
        "B.2 R3",
        "rusty-celery's Redis envelope has no delivery_mode",
    ),
    _d(_RUST, "properties.reply_to", None, "B.2 R3", "rusty-celery writes reply_to null"),
    _d(
        _RUST,
        "body.positional",
        None,
        "B.2 R4",
        "rusty-celery sends every argument as a keyword argument named after the parameter",
    ),
    _d(_RUST, "result.present", None, "B.2 R5", "rusty-celery 0.5.5 has no result backend"),
)


def apply_deviations(outcomes: Iterable[Outcome], client: str | None) -> list[Outcome]:
    """Failed outcomes that are a known deviation of ``client`` become ``deviation``."""
    out = list(outcomes)
    if not client:
        return out
    known = [d for d in DEVIATIONS if d.client == client]
    for o in out:
        if o.status != FAIL:
            continue
        for d in known:
            if d.check == o.check and (d.path is None or o.path.startswith(d.path)):
                o.status = DEVIATION
                o.deviation = f"{d.ref}: {d.note}"
                break
    return out


@dataclass
class RawMessage:
    """One message as the verifier took it off the broker, before any decoding."""

    envelope: str  # "json" (Redis, SQS, ...) or "amqp"
    queue: str
    received_at: datetime
    data: bytes = b""  # the JSON envelope, or the AMQP body
    amqp_properties: dict[str, Any] = field(default_factory=dict)
    broker: str = ""  # "redis", "amqp", "sqs", ...
    list_key: str | None = None  # Redis: the list the entry sat in


class _Collector:
    def __init__(self, case: str = "-") -> None:
        self.case = case
        self.outcomes: list[Outcome] = []

    def add(
        self, check: str, path: str, ok: bool | None, reason: str = "", tolerated: bool = False
    ) -> bool:
        """Record one outcome; a failure receivers tolerate (SPEC §11.4) is a warning."""
        status = NA if ok is None else PASS if ok else WARN if tolerated else FAIL
        if status == WARN:
            reason = f"{reason} (tolerated, §11.4)"
        self.outcomes.append(
            Outcome(check, CHECKS[check].section, self.case, path, status, "" if ok else reason)
        )
        return bool(ok)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


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


def _same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1 from 1.0 and True from 1."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


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


def check_result(
    case: Mapping[str, Any],
    task_id: str,
    record: bytes | None,
    states: Sequence[str],
    *,
    sent_at: datetime,
) -> list[Outcome]:
    """The checks of the record a worker wrote for one call (``None``: none appeared)."""
    c = _Collector(str(case["name"]))
    if not c.add("result.present", f"celery-task-meta-{task_id}", record is not None, "no record"):
        return c.outcomes
    assert record is not None
    try:
        meta = orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        c.add("result.decode", "record", False, f"not JSON: {exc}")
        return c.outcomes
    if not c.add("result.decode", "record", isinstance(meta, dict), f"a {_kind(meta)}"):
        return c.outcomes
    for key in RESULT_FIELDS:
        c.add("result.field", f"record.{key}", key in meta, "missing")
    want_status = case.get("status", "SUCCESS")
    status = meta.get("status")
    c.add(
        "result.status",
        "record.status",
        status == want_status,
        f"{status!r}, expected {want_status}",
    )
    c.add(
        "result.task_id",
        "record.task_id",
        meta.get("task_id") == task_id,
        f"{meta.get('task_id')!r}",
    )
    result = meta.get("result")
    if want_status == "SUCCESS":
        c.add(
            "result.value",
            "record.result",
            _same(result, case["result"]),
            f"{result!r:.120} != {case['result']!r:.120}",
        )
        tb = meta.get("traceback")
        c.add("result.traceback", "record.traceback", tb is None, f"is {tb!r:.80}, not null")
    else:
        problem = ""
        if not isinstance(result, dict):
            problem = f"result is {_kind(result)}, not an exception object"
        else:
            missing = [k for k in ("exc_type", "exc_message", "exc_module") if k not in result]
            if missing:
                problem = f"exception lacks {missing}"
            elif want_status == "REVOKED" and result.get("exc_type") != "TaskRevokedError":
                problem = f"exc_type {result.get('exc_type')!r}, expected TaskRevokedError"
            elif (
                result.get("exc_type") in CELERY_EXCEPTIONS
                and result.get("exc_module") != "celery.exceptions"
            ):
                # Celery's exception_to_python resolves exc_module in sys.modules: any other
                # module gives a Celery client a look-alike class, and isinstance fails.
                problem = (
                    f"exc_module {result.get('exc_module')!r} for {result.get('exc_type')}, "
                    "expected 'celery.exceptions'"
                )
        c.add("result.exception", "record.result", not problem, problem)
        if want_status == "FAILURE":
            tb = meta.get("traceback")
            c.add("result.traceback", "record.traceback", isinstance(tb, str), f"is {_kind(tb)}")
    done = meta.get("date_done")
    if status in READY_STATES:
        ok = isinstance(done, str) and bool(_ISOFORMAT.match(done))
        c.add(
            "result.date_done",
            "record.date_done",
            ok,
            f"{done!r} is not isoformat() with an offset",
        )
    seen = [s for s in states if s]
    bad = ""
    for i, s in enumerate(seen[:-1]):
        if s in READY_STATES:
            bad = f"{s} was followed by {seen[i + 1]}"
            break
    c.add("result.transitions", "states", not bad, f"{' -> '.join(seen)}: {bad}")
    delay = case.get("options", {}).get("countdown")
    if delay and isinstance(done, str):
        try:
            finished = parse_time(done, "record.date_done")
        except ProtocolError:
            finished = None
        if finished is not None:
            if finished.tzinfo is None:
                finished = finished.replace(tzinfo=UTC)
            early = (finished - sent_at).total_seconds()
            c.add(
                "result.eta_respected",
                "record.date_done",
                early >= float(delay) - 0.5,
                f"finished {early:.2f} s after sending, before its {delay} s countdown",
            )
    return c.outcomes


def missing_case(case: str, what: str, timeout: float) -> Outcome:
    """The outcome for a call of the set that never arrived."""
    return Outcome(
        "case.received",
        CHECKS["case.received"].section,
        case,
        "queue",
        FAIL,
        f"timeout: {what} not received within {timeout:g} s",
    )


def skipped_case(case: str, reason: str) -> Outcome:
    return Outcome("case.received", CHECKS["case.received"].section, case, "-", NA, reason)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def now_utc() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())
