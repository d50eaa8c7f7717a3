"""Property tests: encode-then-decode is the identity; no input makes a decoder raise anything
but ProtocolError."""

from __future__ import annotations

import base64
from datetime import UTC, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeriac.protocol import (
    SAFE_CONTENT_TYPES,
    ProtocolError,
    WireMessage,
    decode_task,
    encode_task,
    new_task_message,
)
from celeriac.protocol.control import parse_control_request
from celeriac.protocol.envelopes import amqp, json_envelope, kafka, redis, sqs
from celeriac.protocol.events import parse_event
from celeriac.protocol.results import decode_result

settings.register_profile("ci", max_examples=150, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
zones = st.one_of(st.none(), st.just(UTC), offsets)
keys = st.text(max_size=8).filter(lambda k: k not in ("__type__", "__value__"))
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**128), max_value=2**128),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
tagged_leaves = st.one_of(
    st.datetimes(timezones=zones),
    st.dates(),
    st.times(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.binary(max_size=20),
)


def payloads(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=12,
    )


json_args = st.lists(payloads(st.one_of(json_leaves, tagged_leaves)), max_size=4)
json_kwargs = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k != "__type__"),
    payloads(st.one_of(json_leaves, tagged_leaves)),
    max_size=4,
)
plain = payloads(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20))
)


@given(
    args=json_args,
    kwargs=json_kwargs,
    eta=st.none() | st.datetimes(timezones=st.just(UTC)),
    priority=st.none() | st.integers(0, 9),
    compression=st.sampled_from([None, "zlib", "bzip2", "lzma"]),
    retries=st.integers(0, 1000),
)
def test_json_messages_round_trip_through_every_envelope(
    args: list[Any], kwargs: dict[str, Any], eta: Any, priority: int | None,
    compression: str | None, retries: int,
) -> None:  # fmt: skip
    msg = new_task_message(
        "tasks.prop", args, kwargs, eta=eta, priority=priority, compression=compression,
        retries=retries,
    )  # fmt: skip
    assert decode_task(encode_task(msg)) == msg
    am = amqp.pack(msg)
    assert amqp.unpack(am.body, am.properties) == msg
    in_envelope = msg.replace(properties=msg.properties.__class__(
        correlation_id=msg.id, priority=priority or 0))  # fmt: skip
    assert redis.unpack(redis.pack(in_envelope)) == in_envelope
    assert sqs.unpack(sqs.pack(in_envelope)) == in_envelope
    assert kafka.unpack(kafka.pack(in_envelope).value) == in_envelope


@given(args=st.lists(plain, max_size=4), serializer=st.sampled_from(["msgpack", "yaml"]))
def test_other_serializers_round_trip(args: list[Any], serializer: str) -> None:
    msg = new_task_message("tasks.prop", args, serializer=serializer)
    assert decode_task(encode_task(msg), accept=SAFE_CONTENT_TYPES) == msg


any_json = st.recursive(
    json_leaves,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)


def _only_protocol_errors(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except ProtocolError as exc:
        assert exc.path and exc.reason


@settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_protocol_errors(data: bytes) -> None:
    _only_protocol_errors(redis.unpack, data)
    _only_protocol_errors(sqs.unpack, data)
    _only_protocol_errors(kafka.unpack, data)
    _only_protocol_errors(amqp.unpack, data, {"content_type": "application/json",
                                              "headers": {"task": "t", "id": "i"}})  # fmt: skip
    _only_protocol_errors(decode_result, data)


@settings(max_examples=300)
@given(
    headers=st.dictionaries(st.sampled_from(
        ["task", "id", "eta", "expires", "retries", "timelimit", "group", "group_index",
         "ignore_result", "stamps", "stamped_headers", "compression", "root_id", "x"]), any_json),
    body=any_json,
    properties=any_json,
    content_type=st.sampled_from(["application/json", "application/x-msgpack", "application/x-yaml",
                                  "application/x-python-serialize", "text/plain"]),
)  # fmt: skip
def test_arbitrary_json_only_raises_protocol_errors(
    headers: dict[str, Any], body: Any, properties: Any, content_type: str
) -> None:
    raw = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS) if _fits_orjson(body) else b"[]"
    wire = WireMessage(raw, content_type, "utf-8", headers, properties)
    _only_protocol_errors(decode_task, wire)
    envelope = {"body": base64.b64encode(raw).decode(), "content-type": content_type,
                "headers": headers, "properties": properties}  # fmt: skip
    if _fits_orjson(envelope):
        _only_protocol_errors(json_envelope.unpack, orjson.dumps(envelope))
    _only_protocol_errors(parse_event, body)
    _only_protocol_errors(parse_control_request, body)


def _fits_orjson(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True
