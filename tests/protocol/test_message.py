"""The task message: Celery's defaults, its wire form, and round trips through every envelope."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from celeriac.protocol import (
    SAFE_CONTENT_TYPES,
    ContentDisallowed,
    decode_task,
    encode_task,
    new_task_message,
)
from celeriac.protocol.envelopes import amqp, json_envelope, kafka, redis, sqlite, sqs, zookeeper

CELERY_HEADER_ORDER = [
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
    "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    "replaced_task_nesting", "stamped_headers", "stamps",
]  # fmt: skip


def test_new_message_has_celery_defaults() -> None:
    msg = new_task_message("tasks.add", (2, 3), {"z": 1})
    wire = msg.headers.to_wire()
    assert list(wire) == CELERY_HEADER_ORDER
    assert wire["root_id"] == msg.id and wire["parent_id"] is None
    assert wire["argsrepr"] == "(2, 3)" and wire["kwargsrepr"] == "{'z': 1}"
    assert wire["timelimit"] == [None, None] and wire["retries"] == 0
    assert msg.properties.correlation_id == msg.id
    assert msg.body() == [
        [2, 3],
        {"z": 1},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]


def test_argsrepr_is_truncated() -> None:
    msg = new_task_message("t", ["x" * 5000])
    assert msg.headers.argsrepr is not None and len(msg.headers.argsrepr) == 1024


def test_timelimit_is_hard_then_soft() -> None:
    msg = new_task_message("t", time_limit=10, soft_time_limit=5)
    assert msg.headers.to_wire()["timelimit"] == [10, 5]
    assert decode_task(encode_task(msg)).headers.time_limit == 10


def test_compression_alias_becomes_content_type() -> None:
    msg = new_task_message("t", [1], compression="zlib")
    wire = encode_task(msg)
    assert wire.headers["compression"] == "application/x-gzip"
    assert decode_task(wire) == msg


@pytest.mark.parametrize("serializer", ["json", "msgpack", "yaml"])
def test_each_safe_serializer_round_trips(serializer: str) -> None:
    msg = new_task_message("t", [1, "two", [3.5]], {"k": None}, serializer=serializer)
    assert decode_task(encode_task(msg), accept=SAFE_CONTENT_TYPES) == msg


@pytest.mark.parametrize("serializer", ["msgpack", "yaml"])
def test_only_json_is_accepted_by_default(serializer: str) -> None:
    wire = encode_task(new_task_message("t", [1], serializer=serializer))
    with pytest.raises(ContentDisallowed):
        decode_task(wire)


def test_eta_and_expires_keep_their_offset() -> None:
    eta = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    msg = new_task_message("t", eta=eta, expires=eta + timedelta(hours=1))
    wire = encode_task(msg)
    assert wire.headers["eta"] == "2030-05-06T07:08:09.123456+02:00"
    assert decode_task(wire).headers.eta == eta


def test_custom_headers_travel() -> None:
    msg = new_task_message("t", headers={"x-custom": "v"})
    wire = encode_task(msg)
    assert wire.headers["x-custom"] == "v"
    assert decode_task(wire).headers.extra == {"x-custom": "v"}


def _round_trips() -> dict[str, object]:
    return {
        "redis": lambda m: redis.unpack(redis.pack(m, "q")),
        "sqs": lambda m: sqs.unpack(sqs.pack(m, "q")),
        "kafka": lambda m: kafka.unpack(kafka.pack(m, "q").value),
        "zookeeper": lambda m: zookeeper.unpack(zookeeper.pack(m)),
        "sqlite": lambda m: sqlite.unpack(sqlite.pack(m)),
        "amqp": lambda m: amqp.unpack(amqp.pack(m).body, amqp.pack(m).properties),
    }


@pytest.mark.parametrize("envelope", sorted(_round_trips()))
def test_every_envelope_round_trips(envelope: str) -> None:
    msg = new_task_message(
        "t", [datetime(2020, 1, 1, tzinfo=UTC), b"\xff"], {"u": "ü"}, priority=5,
        link={"task": "cb", "args": [], "kwargs": {}, "options": {}, "subtask_type": None,
              "immutable": False},
    )  # fmt: skip
    assert _round_trips()[envelope](msg) == msg  # type: ignore[operator]


def test_redis_envelope_matches_kombu_layout() -> None:
    msg = new_task_message("t", [1], task_id="id-1", priority=3)
    env = orjson.loads(redis.pack(msg, "celery", delivery_tag="tag-1"))
    assert list(env) == ["body", "content-encoding", "content-type", "headers", "properties"]
    assert env["properties"]["body_encoding"] == "base64"
    assert env["properties"]["delivery_info"] == {"exchange": "", "routing_key": "celery"}
    assert env["properties"]["delivery_tag"] == "tag-1"
    assert env["properties"]["priority"] == 3
    assert orjson.loads(base64.b64decode(env["body"]))[0] == [1]


@pytest.mark.parametrize(
    ("priority", "key"),
    [(None, "celery"), (0, "celery"), (2, "celery"), (3, "celery\x06\x163"),
     (5, "celery\x06\x163"), (6, "celery\x06\x166"), (9, "celery\x06\x169"),
     (200, "celery\x06\x169")],
)  # fmt: skip
def test_redis_priority_keys(priority: int | None, key: str) -> None:
    assert redis.list_key("celery", priority) == key


def test_sqs_queue_names_follow_kombu() -> None:
    assert sqs.queue_name("celery") == "celery"
    assert sqs.queue_name("my.queue") == "my-queue"
    assert sqs.queue_name("a:b@c") == "a_b_c"
    assert sqs.queue_name("jobs.fifo") == "jobs.fifo"
    assert sqs.queue_name("q", prefix="dev-") == "dev-q"


def test_sqs_reads_raw_json_too() -> None:
    # A JSON envelope always carries a priority (0 when unset), as Kombu writes it.
    msg = new_task_message("t", [1], priority=0)
    assert sqs.unpack(json_envelope.pack(msg)) == msg


def test_sqs_refuses_oversized_messages_with_the_limit_named() -> None:
    big = new_task_message("t", ["x" * 300_000])
    with pytest.raises(ValueError, match="262144-byte limit"):
        sqs.pack(big)


def test_kafka_record_carries_key_and_headers() -> None:
    msg = new_task_message("tasks.x", task_id="abc")
    record = kafka.pack(msg, "q")
    assert record.key == b"abc"
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["content-encoding"] == b"utf-8"
    assert headers["x-celeriac-task"] == b"tasks.x"


def test_amqp_properties_fit_pika() -> None:
    import pika

    am = amqp.pack(new_task_message("t", [1], priority=4))
    props = pika.BasicProperties(**am.properties)
    assert props.headers["task"] == "t" and props.priority == 4 and props.delivery_mode == 2
