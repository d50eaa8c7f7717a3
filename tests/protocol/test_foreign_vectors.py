"""Foreign vectors: what celery-node, rusty-celery (and Celery, for reference) put on each broker.

``protocol/vectors/foreign/<client>/<broker>/<case>.json`` (captured by
``python -m interop.clients.capture``) are decoded with the reference codec, envelope per broker
and then the message, and checked against the conformance case they carry. Each known deviation
of SPEC.md Appendix B is looked for in every vector, and must show exactly in the vectors the
appendix says (and be what ``celeriac interop verify`` reported at capture time), so the appendix
and the vectors cannot drift apart.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from celeriac.interop.cases import bind, cases_for, expected_messages
from celeriac.interop.checks import DEVIATIONS
from celeriac.interop.verify import client_capabilities
from celeriac.protocol.message import TaskMessage
from celeriac.protocol.validate import parse_time

from .vectors import VECTORS, decode, load

FOREIGN = VECTORS / "foreign"
SPEC = (VECTORS.parent / "SPEC.md").read_text(encoding="utf-8")
VERSIONS = {"celery-node": "0.5.9", "rusty-celery": "0.5.5", "celery": "5.7.0"}
BROKERS = ("redis", "amqp")
CASES = {c["name"]: c for c in cases_for("client")}
BIG = 2**53 + 1
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: The header table of SPEC §2.2, in its order.
TABLE = (
    "lang task id shadow eta expires group group_index retries timelimit root_id parent_id "
    "argsrepr kwargsrepr origin ignore_result replaced_task_nesting stamped_headers stamps"
).split()


@dataclass(frozen=True)
class Foreign:
    """One foreign vector: its place, the wire taken apart with json/base64, and the decoding."""

    path: Path
    vector: dict[str, Any]
    client: str
    broker: str
    case: str  # the conformance case
    index: int  # which message of the case (group and chord members)
    headers: dict[str, Any]  # exactly as on the wire, in wire order
    props: dict[str, Any]  # the Redis envelope's properties, or the AMQP properties
    body: list[Any]  # [args, kwargs, embed] as on the wire
    msg: TaskMessage  # what the reference codec makes of it

    @property
    def expected(self) -> tuple[str, dict[str, Any]]:
        """(task, arguments by parameter name) the case sends in this message."""
        return expected_messages(CASES[self.case])[self.index]


def _take_apart(vector: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    wire = vector["wire"]
    if vector["envelope"] == "amqp":
        props = dict(wire["properties"])
        raw = base64.b64decode(wire["body_b64"])
        return props.pop("headers", None) or {}, props, json.loads(raw)
    env = json.loads(wire["payload"])
    props = env["properties"]
    assert props["body_encoding"] == "base64"
    return env["headers"], props, json.loads(base64.b64decode(env["body"]))


def _load(path: Path) -> Foreign:
    vector = load(path)
    client, broker = path.parent.parent.name, path.parent.name
    case, _, index = path.stem.rpartition("_") if path.stem[-1].isdigit() else (path.stem, "", "0")
    headers, props, body = _take_apart(vector)
    msg = decode(vector)
    assert isinstance(msg, TaskMessage)
    return Foreign(path, vector, client, broker, case, int(index), headers, props, body, msg)


PATHS = sorted(FOREIGN.rglob("*.json"))
ALL = [_load(p) for p in PATHS]


def _id(f: Foreign) -> str:
    return f"{f.client}/{f.broker}/{f.path.stem}"


def _sent(case: str, index: int) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments the case passes in its ``index``-th message."""
    c = CASES[case]
    if "members" in c:
        return c["members"][index]["args"], {}
    return c["args"], c["kwargs"]


#: Cases added to the set after these vectors were captured (a re-capture adds them), and
#: read_back, which a capture cannot send (it reports results, and a capture runs nothing).
NOT_CAPTURED = frozenset(("expired", "read_back"))


def _expected_files(client: str) -> set[str]:
    names = set()
    for name, case in CASES.items():
        if name not in client_capabilities(client, None).supports or name in NOT_CAPTURED:
            continue
        n = len(expected_messages(case))
        names |= {name} if n == 1 else {f"{name}_{i}" for i in range(n)}
    return names


@pytest.mark.parametrize("client", sorted(VERSIONS))
@pytest.mark.parametrize("broker", BROKERS)
def test_each_client_and_broker_has_the_whole_set(client: str, broker: str) -> None:
    files = {p.stem for p in (FOREIGN / client / broker).glob("*.json")}
    assert files == _expected_files(client)


def test_nothing_else_lies_in_the_foreign_folder() -> None:
    assert {p.relative_to(FOREIGN).parts[:2] for p in PATHS} == {
        (c, b) for c in VERSIONS for b in BROKERS
    }
    assert (FOREIGN / "README.md").is_file()


@pytest.mark.parametrize("f", ALL, ids=_id)
def test_metadata_names_client_version_broker_case_and_date(f: Foreign) -> None:
    v, src = f.vector, f.vector["source"]
    assert v["format"] == 1
    assert v["name"] == str(f.path.relative_to(VECTORS).with_suffix(""))
    assert v["envelope"] == f.broker
    assert src["producer"] == src["client"] == f.client
    assert src["version"] == VERSIONS[f.client]
    assert src["broker"] == f.broker
    assert src["case"] == f.path.stem
    assert dt.date.fromisoformat(src["captured"]) >= dt.date(2026, 1, 1)
    assert "interop.clients.capture" in src["captured_by"]
    assert src["verify"]["failed"] == [], "a check failed that Appendix B does not name"
    if f.broker == "amqp":
        assert f.vector["wire"]["routing_key"] == f"celeriac.foreign.{f.client}"
        assert f.vector["wire"]["redelivered"] is False
    else:
        assert f.vector["wire"]["queue"] == f"celeriac.foreign.{f.client}"


@pytest.mark.parametrize("f", ALL, ids=_id)
def test_decodes_to_the_call_of_its_case(f: Foreign) -> None:
    task, bound = f.expected
    msg = f.msg
    assert msg.protocol == 2
    assert msg.task == task == f.headers["task"]
    assert UUID_TEXT.fullmatch(msg.id), msg.id
    assert str(uuid.UUID(msg.id)) == msg.id
    assert msg.content_type == "application/json"
    got = bind(task, msg.args, msg.kwargs)
    if f.client == "celery-node" and f.case == "big_int":
        assert got != bound  # N5, checked in detail below
        return
    assert got == bound
    args, kwargs = _sent(f.case, f.index)
    if f.client != "rusty-celery":  # positional stays positional (R4 is rusty-celery's)
        assert (list(msg.args), dict(msg.kwargs)) == (args, kwargs)
    # the JSON types survive: floats stay floats, integers stay integers
    for name, value in bound.items():
        assert type(got[name]) is type(value), name


# --- Appendix B: each deviation, as it shows on the wire and in the decoding --------------------


def _n1(f: Foreign) -> bool:
    """N1: only lang ("js"), task and id; the codec reads the §2.2 defaults for the rest."""
    if set(f.headers) != {"lang", "task", "id"}:
        return False
    h = f.msg.headers
    assert f.headers["lang"] == "js" and h.lang == "js"
    assert h.retries == 0 and h.eta is None and h.expires is None and h.root_id is None
    assert h.time_limit is None and h.soft_time_limit is None and h.ignore_result is False
    return True


def _n2(f: Foreign) -> bool:
    """N2 (Redis): correlationId/replyTo in camelCase, replyTo empty; kept as extra properties."""
    if "correlationId" not in f.props:
        return False
    assert f.broker == "redis"
    assert f.props["correlationId"] == f.msg.id and f.props["replyTo"] == ""
    assert "correlation_id" not in f.props and "reply_to" not in f.props
    assert f.msg.properties.correlation_id is None
    assert f.msg.properties.extra == {"correlationId": f.msg.id, "replyTo": ""}
    return True


def _n3(f: Foreign) -> bool:
    """N3: no priority in the Redis envelope's properties; read as absent (priority 0)."""
    if f.broker != "redis" or "priority" in f.props or f.client != "celery-node":
        return False
    assert f.msg.properties.priority is None
    return True


def _n4(f: Foreign) -> bool:
    """N4: the embed is {}; read as four empty keys."""
    if f.body[2] != {}:
        return False
    e = f.msg.embed
    assert (e.callbacks, e.errbacks, e.chain, e.chord) == (None, None, None, None)
    return True


def _n5(f: Foreign) -> bool:
    """N5: 2**53 + 1 arrives as the nearest double, 2**53."""
    if f.case != "big_int":
        return False
    value = f.body[0][1] if f.body[0] else f.body[1]["value"]
    if value == BIG:
        return False
    assert value == float(BIG) == 2**53 and type(value) is int
    assert f.msg.args[1] == 2**53
    return True


_R1_NULL = ("lang", "root_id", "retries", "argsrepr", "kwargsrepr")
_R1_OMITTED = ("ignore_result", "replaced_task_nesting", "stamped_headers", "stamps", "group_index")


def _r1(f: Foreign) -> bool:
    """R1: lang/root_id/retries/argsrepr/kwargsrepr null (left out on AMQP), legacy meth,
    five headers omitted, alphabetical order; the codec uses the §2.2 defaults."""
    if any(k in f.headers for k in _R1_OMITTED) or f.headers.get("lang"):
        return False
    assert list(f.headers) == sorted(f.headers)
    if f.broker == "redis":
        assert all(k in f.headers and f.headers[k] is None for k in _R1_NULL)
        assert "meth" in f.headers and f.headers["meth"] is None
        assert f.msg.headers.extra == {"meth": None}
    else:  # AMQP: every null header is left out, meth too
        assert not any(k in f.headers for k in (*_R1_NULL, "meth"))
        assert all(v is not None for v in f.headers.values() if v != [None, None])
    h = f.msg.headers
    assert h.lang == "py" and h.root_id is None and h.retries == 0 and h.ignore_result is False
    return True


_FRACTION = re.compile(r"T\d\d:\d\d:\d\d\.(\d+)\+00:00")


def _r2(f: Foreign) -> bool:
    """R2: RFC 3339 eta/expires with 9 fraction digits on Redis, 3 on AMQP; read exactly."""
    times = {k: str(f.headers[k]) for k in ("eta", "expires") if f.headers.get(k)}
    digits = {k: len(m.group(1)) for k, v in times.items() if (m := _FRACTION.search(v))}
    if not times or set(digits.values()) == {6}:
        return False
    assert set(digits) == set(times)
    assert set(digits.values()) == {9 if f.broker == "redis" else 3}
    for key, text in times.items():
        got = getattr(f.msg.headers, key)
        assert got == parse_time(text, key) and got.utcoffset() == dt.timedelta(0)
        assert got.isoformat()[:23] == text[:23]  # to the millisecond
    return True


def _r3(f: Foreign) -> bool:
    """R3: Redis envelope without delivery_info, priority, delivery_mode, reply_to null; on AMQP
    no reply-to. Read as priority 0 (absent), persistent."""
    if f.broker == "redis":
        if "delivery_info" in f.props:
            return False
        assert not any(k in f.props for k in ("priority", "delivery_mode"))
        assert "reply_to" in f.props and f.props["reply_to"] is None
        assert f.msg.properties.priority is None
    else:
        if "reply_to" in f.props or f.client != "rusty-celery":
            return False
        assert f.props["priority"] == 0 == f.msg.properties.priority
    assert f.msg.properties.delivery_mode == 2 and f.msg.properties.reply_to is None
    assert f.props["correlation_id"] == f.msg.id
    return True


def _r4(f: Foreign) -> bool:
    """R4: a positional call arrives with every argument named after the Rust parameter."""
    _task, bound = f.expected
    if f.body[0] or not _sent(f.case, f.index)[0]:
        return False
    assert f.body[1] == bound
    assert f.msg.args == () and dict(f.msg.kwargs) == bound
    return True


DETECTORS: dict[str, Callable[[Foreign], bool]] = {
    "N1": _n1,
    "N2": _n2,
    "N3": _n3,
    "N4": _n4,
    "N5": _n5,
    "R1": _r1,
    "R2": _r2,
    "R3": _r3,
    "R4": _r4,
}
#: Where Appendix B says each deviation shows: (client, broker or None for both, cases or None).
WHERE: dict[str, tuple[str, str | None, frozenset[str] | None]] = {
    "N1": ("celery-node", None, None),
    "N2": ("celery-node", "redis", None),
    "N3": ("celery-node", "redis", None),
    "N4": ("celery-node", None, None),
    "N5": ("celery-node", None, frozenset({"big_int"})),
    "R1": ("rusty-celery", None, None),
    "R2": ("rusty-celery", None, frozenset({"countdown", "eta_expires"})),
    "R3": ("rusty-celery", None, None),
    "R4": ("rusty-celery", None, frozenset(n for n in CASES if _sent(n, 0)[0])),
}
#: Appendix B entries about workers and result backends: no client vector can show them.
WORKER_ONLY = {"N6", "N7", "R5"}


def _appendix_b() -> str:
    return SPEC.split("## Appendix B.", 1)[1].split("\n## ", 1)[0]


def test_every_appendix_b_entry_is_checked_here() -> None:
    ids = set(re.findall(r"^- \*\*([NR]\d+)\*\*", _appendix_b(), re.MULTILINE))
    assert ids == set(DETECTORS) | WORKER_ONLY
    assert set(WHERE) == set(DETECTORS)
    # node-celery's entries (B.3, C1...) have no captured vectors yet: named in the appendix only.
    v1_ids = set(re.findall(r"^- \*\*(C\d+)\*\*", _appendix_b(), re.MULTILINE))
    in_checks = {d.ref.split()[1] for d in DEVIATIONS}
    assert in_checks <= ids | v1_ids, in_checks - ids - v1_ids


def test_appendix_b_cites_the_foreign_vectors() -> None:
    text = _appendix_b()
    for client in ("celery-node", "rusty-celery"):
        assert f"`foreign/{client}/" in text, client


def _shown_where(f: Foreign) -> set[str]:
    return {
        dev
        for dev, (client, broker, cases) in WHERE.items()
        if f.client == client and broker in (None, f.broker) and (cases is None or f.case in cases)
    }


@pytest.mark.parametrize("f", ALL, ids=_id)
def test_deviations_show_exactly_where_appendix_b_says(f: Foreign) -> None:
    found = {dev for dev, detect in DETECTORS.items() if detect(f)}
    assert found == _shown_where(f)
    reported = {d.split()[1] for d in f.vector["source"]["verify"]["deviations"]}
    assert reported == found, "verify reported other deviations than the wire shows"


@pytest.mark.parametrize("f", [f for f in ALL if f.client == "celery"], ids=_id)
def test_celery_writes_the_whole_header_table(f: Foreign) -> None:
    assert [k for k in f.headers if k in TABLE] == TABLE
    assert f.msg.headers.root_id == f.msg.id == f.props["correlation_id"]
    assert f.msg.headers.lang == "py"
    assert set(f.body[2]) == {"callbacks", "errbacks", "chain", "chord"}


@pytest.mark.parametrize("f", [f for f in ALL if f.client == "celery-node"], ids=_id)
def test_celery_node_on_amqp_uses_proper_properties(f: Foreign) -> None:
    """N2's other half: on RabbitMQ correlation-id is the id and reply-to is empty."""
    if f.broker != "amqp":
        assert "correlation_id" not in f.props
        return
    assert f.props["correlation_id"] == f.msg.id == f.msg.properties.correlation_id
    assert f.props["reply_to"] == "" and "priority" not in f.props


def test_the_foreign_vectors_are_all_there() -> None:
    counts: dict[str, int] = {}
    for f in ALL:
        counts[f.client] = counts.get(f.client, 0) + 1
    assert counts == {"celery-node": 14, "rusty-celery": 20, "celery": 36}


def _by_case(client: str) -> Mapping[tuple[str, str], Foreign]:
    return {(f.broker, f.path.stem): f for f in ALL if f.client == client}


def test_both_brokers_carry_the_same_call() -> None:
    for client in VERSIONS:
        by = _by_case(client)
        for name in _expected_files(client):
            redis, amqp = by[("redis", name)], by[("amqp", name)]
            assert redis.body[:2] == amqp.body[:2], (client, name)
            assert redis.msg.task == amqp.msg.task
            assert redis.msg.id != amqp.msg.id  # a fresh id per call
