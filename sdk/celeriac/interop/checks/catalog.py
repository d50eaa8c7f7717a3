"""The conformance checks (:data:`CHECKS`, each tied to a section of protocol/SPEC.md and a
severity), the outcome one gives, and the tables of SPEC.md they are driven by."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

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
