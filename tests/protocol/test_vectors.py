"""Every golden vector decodes to the message it promises, and survives our own re-encoding."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from celeriac.protocol import SAFE_CONTENT_TYPES, ProtocolError, decode_task, encode_task
from celeriac.protocol.control import ControlRequest
from celeriac.protocol.events import Event
from celeriac.protocol.message import TaskMessage
from celeriac.protocol.results import ResultRecord

from .vectors import (
    TASK_ENVELOPES,
    all_vectors,
    decode,
    expected_values,
    load,
    read_wire,
    vector_id,
)

VECTOR_FILES = all_vectors()


def test_there_are_enough_vectors() -> None:
    sources = Counter(load(p)["source"]["producer"] for p in VECTOR_FILES)
    assert len(VECTOR_FILES) >= 40, sources
    assert sources["celery"] >= 20, sources


def _check_subset(actual: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    for key, value in expected.items():
        assert key in actual, f"{what}.{key} missing"
        assert actual[key] == value, f"{what}.{key}: {actual[key]!r} != {value!r}"


def _check_task(msg: TaskMessage, vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    compare = set(vector.get("compare", expect))
    assert msg.protocol == expect.get("protocol", 2)
    if "task" in compare:
        assert msg.task == expect["task"]
    if "id" in compare:
        assert msg.id == expect["id"]
    if "args" in compare and "args" in expect:
        assert list(msg.args) == expected_values(expect["args"])
    if "kwargs" in compare and "kwargs" in expect:
        assert dict(msg.kwargs) == expected_values(expect["kwargs"])
    if expect.get("args_repr") is not None:
        as_tuple = expect["args_repr"].startswith("(")
        assert repr(tuple(msg.args) if as_tuple else list(msg.args)) == expect["args_repr"]
    if expect.get("kwargs_repr") is not None:
        assert repr(dict(msg.kwargs)) == expect["kwargs_repr"]
    if "headers" in compare and "headers" in expect:
        _check_subset(msg.headers.to_wire(), expect["headers"], "headers")
    if "properties" in compare and "properties" in expect:
        _check_subset(msg.properties.to_wire(), expect["properties"], "properties")
    if "embed" in compare and expect.get("embed"):
        _check_subset(msg.embed.to_wire(), expect["embed"], "embed")
    if "content_type" in expect:
        assert msg.content_type == expect["content_type"]
    if "compression" in expect:
        assert msg.compression == expect["compression"]


def _check_result(record: ResultRecord, vector: dict[str, Any]) -> None:
    wire = record.to_wire()
    for key, value in vector["expect"].items():
        if key == "result" and isinstance(value, dict) and "exc_type" in value:
            exc = record.exception
            assert exc is not None
            assert exc.exc_type == value["exc_type"]
            assert list(exc.exc_message) == value["exc_message"]
        elif key == "date_done":
            assert (record.date_done is None) == (value is None)
        else:
            assert wire.get(key) == value, f"{key}: {wire.get(key)!r} != {value!r}"


@pytest.mark.parametrize("path", VECTOR_FILES, ids=vector_id)
def test_vector_decodes_as_expected(path: Path) -> None:
    vector = load(path)
    expect = vector["expect"]
    if "error" in expect:
        with pytest.raises(ProtocolError) as info:
            decode(vector)
        assert type(info.value).__name__ == expect["error"]
        assert info.value.path == expect["path"]
        return
    decoded = decode(vector)
    if isinstance(decoded, ResultRecord):
        _check_result(decoded, vector)
    elif isinstance(decoded, Event | ControlRequest):
        assert decoded.to_wire() == expect
    else:
        _check_task(decoded, vector)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=vector_id)
def test_vector_survives_our_reencoding(path: Path) -> None:
    vector = load(path)
    if vector["envelope"] not in TASK_ENVELOPES or "error" in vector["expect"]:
        return
    wire = read_wire(vector)
    msg = decode_task(wire, accept=SAFE_CONTENT_TYPES)
    again = decode_task(encode_task(msg), accept=SAFE_CONTENT_TYPES)
    assert again.replace(protocol=msg.protocol) == msg


def test_wire_bodies_are_base64_where_kombu_writes_base64() -> None:
    for path in VECTOR_FILES:
        vector = load(path)
        if vector["envelope"] == "amqp":
            base64.b64decode(vector["wire"]["body_b64"], validate=True)
