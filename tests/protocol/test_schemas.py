"""The JSON schemas and the codec agree: every vector validates, and for arbitrary headers the
schema accepts exactly what the codec accepts."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from celeriac.protocol import SAFE_CONTENT_TYPES, ProtocolError, WireMessage, decode_body
from celeriac.protocol.validate import parse_headers

from .vectors import TASK_ENVELOPES, VECTORS, all_vectors, load, read_wire, vector_id

SCHEMAS = VECTORS.parent / "schema"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


HEADERS = validator("task-headers-v2.schema.json")
BODY = validator("task-body-v2.schema.json")
V1 = validator("task-message-v1.schema.json")
REDIS = validator("redis-envelope.schema.json")
RESULT = validator("result-record.schema.json")


def test_every_schema_is_a_valid_schema() -> None:
    names = sorted(p.name for p in SCHEMAS.glob("*.json"))
    assert len(names) >= 7, names
    for name in names:
        validator(name)


def _errors(v: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in v.iter_errors(instance)]


def _good_task_vectors() -> list[Path]:
    vectors = [(p, load(p)) for p in all_vectors()]
    return [p for p, v in vectors if v["envelope"] in TASK_ENVELOPES and "error" not in v["expect"]]


EVENT = validator("event.schema.json")
CONTROL = validator("control-message.schema.json")


@pytest.mark.parametrize(
    "path", [p for p in all_vectors() if load(p)["envelope"] in ("event", "control")],
    ids=vector_id,
)  # fmt: skip
def test_event_and_control_vectors_validate(path: Path) -> None:
    vector = load(path)
    schema = EVENT if vector["envelope"] == "event" else CONTROL
    assert not _errors(schema, json.loads(vector["wire"]["body"]))


@pytest.mark.parametrize("path", _good_task_vectors(), ids=vector_id)
def test_task_vectors_validate_against_the_schemas(path: Path) -> None:
    vector = load(path)
    wire = read_wire(vector)
    body = decode_body(wire, accept=SAFE_CONTENT_TYPES)
    if isinstance(body, dict):  # protocol v1 (or the hybrid)
        assert not _errors(V1, json.loads(json.dumps(body, default=str))) or "task" in wire.headers
        return
    assert not _errors(HEADERS, json.loads(json.dumps(dict(wire.headers))))
    assert not _errors(BODY, _as_json(wire))
    if vector["envelope"] in ("redis", "zookeeper", "sqlite", "kafka"):
        assert not _errors(REDIS, json.loads(vector["wire"]["payload"]))


def _as_json(wire: WireMessage) -> Any:
    """The body as plain JSON (tagged values stay tagged), whatever it was serialized with."""
    from celeriac.protocol.tagged import to_tagged

    return json.loads(
        json.dumps(to_tagged(decode_body(wire, accept=SAFE_CONTENT_TYPES)), default=str)
    )


@pytest.mark.parametrize(
    "path", [p for p in all_vectors() if load(p)["envelope"] == "results"], ids=vector_id
)
def test_result_vectors_validate_against_the_schema(path: Path) -> None:
    record = json.loads(load(path)["wire"]["value"])
    assert not _errors(RESULT, record)


# Each header gets either a value of the right kind or something wrong, so both sides of the
# agreement are exercised.
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(-1, 1e6, allow_nan=False),
    st.text(max_size=5), st.sampled_from(["2030-01-01T00:00:00+00:00", "2030-01-01T00:00:00",
                                          "not a date"]),
    st.lists(st.one_of(st.none(), st.integers(-1, 10), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip
_names = st.sampled_from(
    ["task", "id", "lang", "shadow", "eta", "expires", "group", "group_index", "retries",
     "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
     "replaced_task_nesting", "stamped_headers", "stamps", "x-custom"]
)  # fmt: skip


@given(
    base=st.fixed_dictionaries({"task": st.just("t"), "id": st.just("i")}),
    changes=st.dictionaries(_names, _values, max_size=4),
)
def test_schema_and_codec_accept_the_same_headers(
    base: dict[str, Any], changes: dict[str, Any]
) -> None:
    headers = {**base, **changes}
    try:
        parse_headers(headers)
        codec_ok = True
    except ProtocolError:
        codec_ok = False
    schema_errors = _errors(HEADERS, headers)
    assert codec_ok == (not schema_errors), (headers, schema_errors)


def test_envelope_bodies_are_base64() -> None:
    for path in _good_task_vectors():
        vector = load(path)
        if vector["envelope"] == "redis":
            env = json.loads(vector["wire"]["payload"])
            if env["properties"].get("body_encoding") != "base64":
                continue  # SPEC §11.4: a tolerated utf-8 body (tolerated_body_utf8)
            base64.b64decode(env["body"], validate=True)


@pytest.mark.parametrize(
    "eta",
    ["2030-01-01T10:00:00+02:00", "2030-01-01", "2030-01-01 10:00", "2030-01-01T10+02",
     "2030-01-01T10:00:00.123456Z", "2030-01-01T10:00:00,5", "", None, "2030-01-01\n",
     "2030-W01", "2030-001", "2030", "2030-13-01", "0000-01-01", "soon", "20300101T1000"],
)  # fmt: skip
def test_schema_and_codec_agree_on_times(eta: str | None) -> None:
    headers = {"task": "t", "id": "i", "eta": eta}
    try:
        parse_headers(headers)
        codec_ok = True
    except ProtocolError:
        codec_ok = False
    assert codec_ok == HEADERS.is_valid(headers)
