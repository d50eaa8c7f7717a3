"""Malformed input of every kind gets a ProtocolError naming the field path and the reason."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from celeriac.protocol import (
    ContentDisallowed,
    DecodeError,
    LimitExceeded,
    Limits,
    ProtocolError,
    UnsupportedCompression,
    UnsupportedContentType,
    ValidationError,
    encode_task,
    new_task_message,
)
from celeriac.protocol.envelopes import amqp, json_envelope, redis, sqs

GOOD = orjson.loads(redis.pack(new_task_message("t", [1], task_id="i"), "q"))


def envelope(**changes: Any) -> bytes:
    env = orjson.loads(orjson.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = env
        for p in parents:
            target = target[p]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return orjson.dumps(env)


def body(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


CASES: dict[str, tuple[Callable[[], object], type[ProtocolError], str]] = {
    "truncated envelope": (lambda: redis.unpack(redis.pack(new_task_message("t"))[:-5]),
                           DecodeError, "envelope"),
    "envelope not an object": (lambda: redis.unpack(b"[1, 2]"), ValidationError, "envelope"),
    "envelope body missing": (lambda: redis.unpack(envelope(body=KeyError)),
                              ValidationError, "envelope.body"),
    "bad base64": (lambda: redis.unpack(envelope(body="%%%")), DecodeError, "envelope.body"),
    "unknown body encoding": (lambda: redis.unpack(envelope(properties__body_encoding="rot13")),
                              ValidationError, "envelope.properties.body_encoding"),
    "truncated body JSON": (lambda: redis.unpack(envelope(body=body(b"[[1], {}"))),
                            DecodeError, "body"),
    "unknown content type": (lambda: redis.unpack(envelope(**{"content-type": "text/x-nope"})),
                             UnsupportedContentType, "content_type"),
    "pickle refused": (lambda: redis.unpack(envelope(
        **{"content-type": "application/x-python-serialize"})), ContentDisallowed, "content_type"),
    "unknown compression": (lambda: redis.unpack(envelope(headers__compression="x-snappy")),
                            UnsupportedCompression, "headers.compression"),
    "corrupt compressed body": (lambda: redis.unpack(envelope(
        headers__compression="application/x-gzip")), DecodeError, "body"),
    "task header wrong type": (lambda: redis.unpack(envelope(headers__task=5)),
                               ValidationError, "headers.task"),
    "id header missing": (lambda: redis.unpack(envelope(headers__id=KeyError)),
                          ValidationError, "headers.id"),
    "eta not a date": (lambda: redis.unpack(envelope(headers__eta="tomorrow")),
                       ValidationError, "headers.eta"),
    "expires wrong type": (lambda: redis.unpack(envelope(headers__expires=[1])),
                           ValidationError, "headers.expires"),
    "retries negative": (lambda: redis.unpack(envelope(headers__retries=-1)),
                         ValidationError, "headers.retries"),
    "retries a string": (lambda: redis.unpack(envelope(headers__retries="3")),
                         ValidationError, "headers.retries"),
    "timelimit not a pair": (lambda: redis.unpack(envelope(headers__timelimit=[1])),
                             ValidationError, "headers.timelimit"),
    "timelimit soft wrong": (lambda: redis.unpack(envelope(headers__timelimit=[1, "x"])),
                             ValidationError, "headers.timelimit[1]"),
    "headers not a mapping": (lambda: redis.unpack(envelope(headers=[1])),
                              ValidationError, "envelope.headers"),
    "priority out of range": (lambda: redis.unpack(envelope(properties__priority=999)),
                              ValidationError, "properties.priority"),
    "body of two items": (lambda: redis.unpack(envelope(body=body(b"[[1], {}]"))),
                          ValidationError, "body"),
    "args not a list": (lambda: redis.unpack(envelope(body=body(b'[{"a": 1}, {}, null]'))),
                        ValidationError, "body[0]"),
    "kwargs not a mapping": (lambda: redis.unpack(envelope(body=body(b"[[], [], null]"))),
                             ValidationError, "body[1]"),
    "callbacks not a list": (lambda: redis.unpack(envelope(
        body=body(b'[[], {}, {"callbacks": 5}]'))), ValidationError, "body[2].callbacks"),
    "signature without task": (lambda: redis.unpack(envelope(
        body=body(b'[[], {}, {"chain": [{"args": []}]}]'))), ValidationError,
        "body[2].chain[0].task"),
    "unknown tagged type": (lambda: redis.unpack(envelope(
        body=body(b'[[{"__type__": "evil", "__value__": 1}], {}, null]'))),
        ValidationError, "body[0][0].__type__"),
    "bad tagged datetime": (lambda: redis.unpack(envelope(
        body=body(b'[[{"__type__": "datetime", "__value__": "x"}], {}, null]'))),
        DecodeError, "body[0][0].__value__"),
    "neither v1 nor v2": (lambda: redis.unpack(envelope(headers={})),
                          ValidationError, "headers.task"),
    "v1 body without id": (lambda: redis.unpack(envelope(
        headers={}, body=body(b'{"task": "t", "args": []}'))), ValidationError, "body.id"),
    "v1 args not a list": (lambda: redis.unpack(envelope(
        headers={}, body=body(b'{"task": "t", "id": "i", "args": 3}'))),
        ValidationError, "body.args"),
    "v1/v2 mixture with bad header": (lambda: redis.unpack(envelope(
        headers__retries="x", body=body(b'{"task": "t", "id": "i", "args": []}'))),
        ValidationError, "body.retries"),
    "oversized envelope": (lambda: json_envelope.unpack(
        redis.pack(new_task_message("t", ["x" * 2000])), limits=Limits(max_message_bytes=1000)),
        LimitExceeded, "envelope"),
    "too deep": (lambda: redis.unpack(envelope(body=body(b"[[" + b"[" * 200 + b"]" * 200
                                                         + b"], {}, null]"))),
                 LimitExceeded, ("body" + "[0]" * 30)[:60] + "..."),
    "sqs body neither JSON nor base64": (lambda: sqs.unpack("%%%"), DecodeError, "body"),
    "amqp without content type": (lambda: amqp.unpack(b"[]", {"headers": {}}),
                                  ValidationError, "properties.content_type"),
    "amqp body not UTF-8": (lambda: amqp.unpack(b"\xff\xfe", {"content_type": "application/json",
                                                              "headers": {"task": "t", "id": "i"}}),
                            DecodeError, "body"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_names_field_and_reason(case: str) -> None:
    call, error, path = CASES[case]
    with pytest.raises(error) as info:
        call()
    assert info.value.path == path
    assert info.value.reason
    assert str(info.value).startswith(path)


def test_errors_survive_pickling_between_processes() -> None:
    import pickle

    err = ValidationError("headers.eta", "bad")
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.path, again.reason) == (ValidationError, "headers.eta", "bad")


def test_properties_amqp_has_no_field_for_are_left_out_of_the_amqp_envelope() -> None:
    wire = encode_task(new_task_message("t", (1,)))
    foreign = dataclasses.replace(
        wire, properties={**wire.properties, "correlationId": "x", "replyTo": ""}
    )
    packed = amqp.pack_wire(foreign)
    assert "correlationId" not in packed.properties and "replyTo" not in packed.properties
    assert packed.properties["correlation_id"] == wire.properties["correlation_id"]
    assert set(packed.properties) <= amqp.BASIC_PROPERTIES
