"""The JSON envelope reader's fast path for the usual shape reads exactly what the checks field
by field read, and refuses exactly what they refuse, with the same error and field; the
consumer's reader (:func:`unpack_consumed`) agrees with :func:`unpack_wire`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac.protocol import ProtocolError, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes import kafka as kafka_envelope
from celeriac.protocol.envelopes.kafka import REDELIVERED_HEADER

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
CELERY_ENVELOPE = orjson.loads(
    json.loads((VECTORS / "captured/redis/countdown.json").read_text())["wire"]["payload"]
)
OUR_ENVELOPE = orjson.loads(
    json_envelope.pack(new_task_message("t.add", (1, 2), origin="w@h"), routing_key="q")
)
DROP = object()

#: Values that each top-level field, property or header may be replaced with (DROP: removed).
ODD = [DROP, None, 0, 1, True, "", "x", "%%%", "e30=", "utf-8", "UTF-8", [], {}, [1], {"a": 1}]
TOP = ["body", "content-type", "content-encoding", "headers", "properties"]
PROPERTIES = ["body_encoding", "delivery_info", "delivery_tag", "correlation_id", "priority"]
# Half of them base64, the usual shape the fast path takes.
ENCODINGS = ["base64"] * 9 + [DROP, None, "utf-8", "UTF-8", "utf8", "bogus", "", 5, ["base64"]]
INFOS = [DROP, None, {}, "x", {"redelivered": True}, {"exchange": 5, "routing_key": None},
         {"exchange": "e", "routing_key": "k", "redelivered": 0}]  # fmt: skip
REDELIVERED = [DROP, True, False, 0, 1, "x", None]


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is DROP:
        target.pop(key, None)
    else:
        target[key] = value


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """A good envelope (Celery's or ours) with a few fields changed, dropped or retyped."""
    env: Any = orjson.loads(orjson.dumps(draw(st.sampled_from([CELERY_ENVELOPE, OUR_ENVELOPE]))))
    props = env["properties"]
    _set(props, "body_encoding", draw(st.sampled_from(ENCODINGS)))
    _set(props, "delivery_info", draw(st.sampled_from(INFOS)))
    _set(env["headers"], "redelivered", draw(st.sampled_from(REDELIVERED)))
    for key in draw(st.lists(st.sampled_from(PROPERTIES), max_size=2)):
        _set(props, key, draw(st.sampled_from(ODD)))
    for key in draw(st.lists(st.sampled_from(TOP), max_size=2)):
        _set(env, key, draw(st.sampled_from(ODD)))
    if draw(st.booleans()) and props.get("body_encoding") in (None, "utf-8", "UTF-8", "utf8"):
        env["body"] = '[[1, 2], {}, {"callbacks": null}]'
    if draw(st.integers(0, 19)) == 7:
        env = draw(st.sampled_from([[], 1, "envelope", None, [env]]))
    return orjson.dumps(env)


def _outcome(call: Any) -> Any:
    try:
        return call()
    except ProtocolError as exc:
        return type(exc), exc.path, str(exc)


def _checked(data: bytes) -> Any:
    """What the field-by-field checks alone make of ``data`` (no fast path)."""
    env = orjson.loads(data)
    wire, info, tag = json_envelope._read_checked(env)
    info = info if isinstance(info, dict) else {}
    exchange, routing_key = info.get("exchange"), info.get("routing_key")
    return wire, json_envelope.EnvelopeInfo(
        exchange=exchange if isinstance(exchange, str) else "",
        routing_key=routing_key if isinstance(routing_key, str) else "",
        delivery_tag=tag if isinstance(tag, str) else None,
        redelivered=bool(wire.headers.get("redelivered") or info.get("redelivered")),
    )


@settings(max_examples=600, deadline=None)
@given(envelopes())
def test_the_fast_path_reads_and_refuses_as_the_checks_do(data: bytes) -> None:
    expected = _outcome(lambda: _checked(data))
    assert _outcome(lambda: json_envelope.unpack_wire(data)) == expected
    consumed = _outcome(lambda: json_envelope.unpack_consumed(data))
    if isinstance(expected[0], type):
        assert consumed == expected
    else:
        wire, info = expected
        assert consumed == (wire, info.redelivered)


@pytest.mark.parametrize("envelope", [CELERY_ENVELOPE, OUR_ENVELOPE], ids=["celery", "ours"])
def test_the_usual_envelope_loses_only_the_bookkeeping(envelope: dict[str, Any]) -> None:
    wire, info = json_envelope.unpack_wire(orjson.dumps(envelope))
    props = envelope["properties"]
    assert dict(wire.properties) == {
        k: v
        for k, v in props.items()
        if k not in ("delivery_info", "body_encoding", "delivery_tag")
    }
    assert wire.headers == envelope["headers"]
    assert info.delivery_tag == props["delivery_tag"]
    assert info.routing_key == props["delivery_info"]["routing_key"]
    assert not info.redelivered


@pytest.mark.parametrize(
    "change",
    [
        {"headers": {"redelivered": True}},
        {"properties": {"delivery_info": {"exchange": "", "redelivered": True}}},
    ],
)
def test_a_redelivery_marked_in_the_envelope_reads_as_one(change: dict[str, Any]) -> None:
    env = orjson.loads(orjson.dumps(OUR_ENVELOPE))
    for part, values in change.items():
        env[part].update(values)
    data = orjson.dumps(env)
    assert json_envelope.unpack_consumed(data)[1] is True
    assert json_envelope.unpack_wire(data)[1].redelivered is True


def _record() -> kafka_envelope.KafkaRecord:
    return kafka_envelope.pack_wire(encode_task(new_task_message("t.add", (1, 2))), "q")


def test_the_kafka_consumer_reader_agrees_with_unpack_record() -> None:
    record = _record()
    for headers in (record.headers, (*record.headers, (REDELIVERED_HEADER, b"1")), None):
        wire, info = kafka_envelope.unpack_record(record.value, headers)
        assert kafka_envelope.unpack_consumed(record.value, headers) == (wire, info.redelivered)
    contradicting = (*record.headers, ("content-type", b"application/x-yaml"))
    with pytest.raises(ProtocolError) as refused:
        kafka_envelope.unpack_consumed(record.value, contradicting)
    assert refused.value.path == "record.headers.content-type"
    with pytest.raises(ProtocolError) as tombstone:
        kafka_envelope.unpack_consumed(None, record.headers)
    assert tombstone.value.path == "record.value"


def test_a_kafka_record_whose_envelope_encoding_is_not_text_is_refused_by_field() -> None:
    # Its content-encoding header cannot agree with a number: a protocol error naming the header
    # (it used to escape as an AttributeError, past the consumer's dead-letter path).
    record = _record()
    env = orjson.loads(record.value)
    env["content-encoding"] = 5
    for read in (kafka_envelope.unpack_record, kafka_envelope.unpack_consumed):
        with pytest.raises(ProtocolError) as refused:
            read(orjson.dumps(env), record.headers)
        assert refused.value.path == "record.headers.content-encoding"
