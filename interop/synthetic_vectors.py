"""Write the synthetic golden vectors under protocol/vectors/synthetic/ and .../malformed/.

They cover what real Celery cannot produce for us (Kafka, ZooKeeper and SQLite envelopes),
edge cases, protocol v1 in its several shapes, result records, and malformed input with the
error a receiver must report. Everything is fixed (ids, tags, times), so a re-run rewrites the
same bytes:

    python interop/synthetic_vectors.py
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from celeriac.protocol import TaskMessage, new_task_message
from celeriac.protocol.envelopes import amqp, json_envelope, kafka, redis
from celeriac.protocol.results import EncodedException, ResultRecord, encode_result
from celeriac.protocol.serializers import dumps

ROOT = Path(__file__).resolve().parents[1] / "protocol" / "vectors"
SOURCE = {"producer": "celeriac", "generator": "interop/synthetic_vectors.py"}
TAG = "00000000-0000-4000-8000-0000000000a9"


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _jsonable(value: Any) -> Any:
    return json.loads(dumps(value)[0])


def expect_of(msg: TaskMessage) -> dict[str, Any]:
    return {
        "protocol": msg.protocol,
        "task": msg.task,
        "id": msg.id,
        "content_type": msg.content_type,
        "compression": msg.compression,
        "args": _jsonable(list(msg.args)),
        "kwargs": _jsonable(dict(msg.kwargs)),
        "args_repr": repr(tuple(msg.args)),
        "kwargs_repr": repr(dict(msg.kwargs)),
        "headers": _jsonable(msg.headers.to_wire()),
        "properties": _jsonable(msg.properties.to_wire()),
        "embed": _jsonable(msg.embed.to_wire()),
    }


def write(name: str, description: str, envelope: str, wire: dict[str, Any],
          expect: dict[str, Any]) -> None:  # fmt: skip
    path = ROOT / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    vector = {
        "format": 1,
        "name": name,
        "description": description,
        "source": SOURCE,
        "envelope": envelope,
        "wire": wire,
        "expect": expect,
        "compare": sorted(k for k in expect if k not in ("args_repr", "kwargs_repr")),
    }
    path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def json_wire(msg: TaskMessage, queue: str = "celery") -> dict[str, Any]:
    payload = redis.pack(msg, queue, delivery_tag=TAG).decode("utf-8")
    return {"queue": queue, "key": redis.list_key(queue, msg.properties.priority),
            "payload": payload}  # fmt: skip


def task(name: str, description: str, envelope: str, msg: TaskMessage) -> None:
    if envelope == "amqp":
        am = amqp.pack(msg)
        wire = {
            "exchange": "",
            "routing_key": "celery",
            "body_b64": base64.b64encode(am.body).decode(),
            "properties": dict(am.properties),
        }
    elif envelope == "kafka":
        record = kafka.pack(msg, "celery", delivery_tag=TAG)
        wire = {"topic": "celery", "key": (record.key or b"").decode(),
                "headers": {k: v.decode() for k, v in record.headers},
                "payload": record.value.decode("utf-8")}  # fmt: skip
    elif envelope == "zookeeper":
        # kazoo's node priority is 9 - message priority; lower names are served first.
        node_priority = 9 - min(max(msg.properties.priority or 0, 0), 9)
        wire = {"path": f"/celery/entry-{node_priority:03d}-0000000001",
                "payload": json_envelope.pack(msg, delivery_tag=TAG).decode()}  # fmt: skip
    elif envelope == "sqlite":
        wire = {"table": "messages", "queue": "celery",
                "priority": min(max(msg.properties.priority or 0, 0), 9),
                "payload": json_envelope.pack(msg, delivery_tag=TAG).decode()}  # fmt: skip
    else:
        wire = json_wire(msg)
    if envelope != "amqp" and msg.properties.priority is None:
        msg = msg.replace(properties=msg.properties.__class__(
            correlation_id=msg.id, reply_to=msg.properties.reply_to, priority=0))  # fmt: skip
    write(f"synthetic/{envelope}/{name}", description, envelope, wire, expect_of(msg))


def raw_redis(body: Any, headers: dict[str, Any], content_type: str = "application/json") -> str:
    """A Redis entry built by hand, for shapes our encoder never writes (v1, malformed)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    envelope = {
        "body": base64.b64encode(raw).decode(),
        "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": headers,
        "properties": {
            "correlation_id": _id(90),
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": "celery"},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": TAG,
        },
    }
    return json.dumps(envelope)


def tolerated(task_id: str) -> None:
    """SPEC §11.4: producer faults a receiver must accept, each as a Redis entry built by hand."""
    body = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    full = {"lang": "py", "task": "interop.add", "id": task_id, "root_id": task_id}
    expect = {"protocol": 2, "task": "interop.add", "id": task_id, "args": [2, 3], "kwargs": {}}

    def entry(**changes: Any) -> dict[str, Any]:
        envelope = json.loads(raw_redis(changes.pop("body", body), changes.pop("headers", full)))
        for key, value in changes.items():
            if key == "properties":
                envelope["properties"].update(value)
            elif value is None:
                del envelope[key]
            else:
                envelope[key] = value
        return {"queue": "celery", "key": "celery", "payload": json.dumps(envelope)}

    utf8 = entry(properties={"body_encoding": "utf-8"})
    envelope = json.loads(utf8["payload"])
    envelope["body"] = json.dumps(body)  # the text itself, not its Base64
    utf8["payload"] = json.dumps(envelope)
    write("synthetic/redis/tolerated_body_utf8",
          "§11.4: body_encoding utf-8, the body is the JSON text itself", "redis", utf8,
          expect)  # fmt: skip
    packed = zlib.compress(json.dumps(body).encode())
    gz = entry(body=packed, headers=dict(full, compression="application/x-gzip"))
    envelope = json.loads(gz["payload"])
    envelope["content-encoding"] = "gzip"  # a producer that named its compression here
    gz["payload"] = json.dumps(envelope)
    write("synthetic/redis/tolerated_content_encoding",
          "§11.4: a zlib-compressed JSON body labelled content-encoding gzip (Kombu ignores it)",
          "redis", gz, dict(expect, compression="application/x-gzip"))  # fmt: skip
    bare = entry(body=[[2, 3], {}, {}], headers={"task": "interop.add", "id": task_id})
    envelope = json.loads(bare["payload"])
    del envelope["content-encoding"]
    bare["payload"] = json.dumps(envelope)
    write("synthetic/redis/tolerated_missing_headers",
          "§11.4: no content-encoding, only task and id in headers, embed {}", "redis", bare,
          dict(expect, headers={"root_id": None, "retries": 0,
                                "timelimit": [None, None]}))  # fmt: skip
    times = entry(headers=dict(full, eta="2031-01-01T00:00:00.123Z",
                               expires="2031-01-02T00:00:00.123456789Z"))  # fmt: skip
    write("synthetic/redis/tolerated_z_millis",
          "§11.4: eta with Z and milliseconds, expires with nanoseconds (Celery reads both)",
          "redis", times,
          dict(expect, headers={"eta": "2031-01-01T00:00:00.123000+00:00",
                                "expires": "2031-01-02T00:00:00.123456+00:00"}))  # fmt: skip


def main() -> None:
    base = {"task_id": _id(1), "origin": "gen1@vectors", "reply_to": _id(99)}
    add = new_task_message("interop.add", (2, 3), **base)
    for env in ("kafka", "zookeeper", "sqlite"):
        task("plain_args", f"interop.add(2, 3) on the {env} envelope", env, add)
        task(
            "kwargs_priority",
            f"kwargs and priority 6 on the {env} envelope",
            env,
            new_task_message("interop.add", (), {"x": 2, "y": 3}, priority=6, **base),
        )

    task(
        "unicode_astral",
        "astral-plane characters, combining marks and RTL text",
        "redis",
        new_task_message(
            "interop.echo", ("🥕🎉", "e\u0301", "שלום", "\u2028"), {"ключ": "值"}, **base
        ),
    )
    task(
        "big_int_128",
        "integers past 64 bits in args and kwargs",
        "amqp",
        new_task_message("interop.echo", (2**127, -(2**100)), {"n": 10**30}, **base),
    )
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"d": [deep]}
    task(
        "nested_deep",
        "80 levels of nesting, under the default depth limit",
        "redis",
        new_task_message("interop.echo", (deep,), **base),
    )
    task(
        "tz_negative_offset",
        "eta and expires at -03:30, microseconds kept",
        "redis",
        new_task_message(
            "interop.add",
            (1, 2),
            eta=datetime(
                2031, 1, 2, 3, 4, 5, 600, tzinfo=timezone(-timedelta(hours=3, minutes=30))
            ),
            expires=datetime(2031, 1, 3, tzinfo=UTC),
            **base,
        ),
    )
    task("tagged_all", "every tagged type at once, nested in kwargs", "amqp",
         new_task_message("interop.echo", (), {"when": datetime(2030, 1, 1, tzinfo=UTC),
                          "id": UUID(_id(7)), "price": Decimal("-0.10"), "raw": b"\x00\xfe",
                          "text": b"plain"}, **base))  # fmt: skip
    task("empty_args", "no args, no kwargs", "redis", new_task_message("interop.noop", **base))
    task(
        "priority_9",
        "priority 9 lands in the celery\\x06\\x169 list",
        "redis",
        new_task_message("interop.add", (1, 1), priority=9, **base),
    )
    task(
        "compression_lzma",
        "lzma-compressed body (application/x-lzma)",
        "redis",
        new_task_message("interop.echo", ("x" * 200,), compression="lzma", **base),
    )
    task(
        "serializer_msgpack",
        "msgpack body with binary content encoding",
        "amqp",
        new_task_message("interop.echo", (b"\x00\x01", 1.5), serializer="msgpack", **base),
    )
    sig = {
        "task": "interop.tsum",
        "args": [],
        "kwargs": {},
        "options": {"task_id": _id(50)},
        "subtask_type": None,
        "immutable": False,
        "chord_size": 2,
    }
    task("chord_header_part", "one header task of a chord, carrying the body in embed.chord",
         "redis", new_task_message("interop.add", (1, 2), group=_id(40), group_index=0,
                                   chord=sig, **base))  # fmt: skip
    steps = [{"task": "interop.add", "args": [n], "kwargs": {}, "options": {},
              "subtask_type": None, "immutable": False} for n in (4, 3)]  # fmt: skip
    task(
        "chain_reversed",
        "a chain's remaining steps, last to run first",
        "amqp",
        new_task_message("interop.add", (1, 2), chain=steps, **base),
    )
    task(
        "time_limits_retries",
        "timelimit [hard, soft], retries, shadow, custom header",
        "amqp",
        new_task_message(
            "interop.add",
            (1, 2),
            time_limit=30,
            soft_time_limit=20.5,
            retries=4,
            shadow="alias",
            headers={"x-tenant": "acme"},
            **base,
        ),
    )

    v1_body = {"task": "interop.add", "id": _id(60), "args": [2, 3], "kwargs": {},
               "retries": 1, "eta": "2031-01-01T00:00:00", "expires": None, "utc": True,
               "callbacks": None, "errbacks": None, "timelimit": [None, None],
               "taskset": _id(61), "chord": None}  # fmt: skip
    v1_expect = {"protocol": 1, "task": "interop.add", "id": _id(60), "args": [2, 3],
                 "kwargs": {}, "headers": {"retries": 1, "group": _id(61),
                 "eta": "2031-01-01T00:00:00+00:00", "root_id": _id(60)}}  # fmt: skip
    write(
        "synthetic/v1/utc_naive_eta",
        "protocol v1: headers empty, naive eta read as UTC",
        "redis",
        {"queue": "celery", "key": "celery", "payload": raw_redis(v1_body, {})},
        v1_expect,
    )
    local = dict(v1_body, utc=False)
    write(
        "synthetic/v1/local_eta",
        "protocol v1 with utc false: eta stays naive",
        "redis",
        {"queue": "celery", "key": "celery", "payload": raw_redis(local, {})},
        dict(v1_expect, headers=dict(v1_expect["headers"], eta="2031-01-01T00:00:00")),
    )
    hybrid = {"args": [5], "kwargs": {"y": 1}, "callbacks": None, "errbacks": None,
              "chord": None}  # fmt: skip
    write("synthetic/v1/hybrid", "Celery's hybrid: v2 headers with a v1 mapping body", "redis",
          {"queue": "celery", "key": "celery",
           "payload": raw_redis(hybrid, {"task": "interop.add", "id": _id(62), "lang": "py"})},
          {"protocol": 1, "task": "interop.add", "id": _id(62), "args": [5],
           "kwargs": {"y": 1}})  # fmt: skip

    tolerated(_id(70))

    malformed = {
        "bad_base64": (raw_redis(b"[]", {"task": "t", "id": "i"}).replace('"body": "W10="',
                       '"body": "%%%"'), "DecodeError", "envelope.body"),
        "truncated_body": (raw_redis(b"[[1], {}", {"task": "t", "id": "i"}), "DecodeError",
                           "body"),
        "unknown_compression": (raw_redis([[], {}, None], {"task": "t", "id": "i",
                                "compression": "application/x-snappy"}),
                                "UnsupportedCompression", "headers.compression"),
        "pickle_body": (raw_redis(b"\x80\x04K\x01.", {"task": "t", "id": "i"},
                                  "application/x-python-serialize"),
                        "ContentDisallowed", "content_type"),
        "missing_id": (raw_redis([[], {}, None], {"task": "t"}), "ValidationError", "headers.id"),
        "bad_eta": (raw_redis([[], {}, None], {"task": "t", "id": "i", "eta": "soon"}),
                    "ValidationError", "headers.eta"),
        "body_not_triple": (raw_redis([[], {}], {"task": "t", "id": "i"}), "ValidationError",
                            "body"),
        "neither_v1_nor_v2": (raw_redis([[], {}, None], {}), "ValidationError", "headers.task"),
    }  # fmt: skip
    for name, (payload, error, path) in malformed.items():
        write(
            f"malformed/redis/{name}",
            f"malformed: a receiver must report {error} at {path}",
            "redis",
            {"queue": "celery", "key": "celery", "payload": payload},
            {"error": error, "path": path},
        )

    done = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    records = {
        "success": ResultRecord(_id(70), "SUCCESS", 5, date_done=done),
        "failure": ResultRecord(_id(71), "FAILURE", EncodedException("ValueError", ("boom",)),
                                traceback="Traceback (most recent call last):\n...",
                                date_done=done),
        "retry": ResultRecord(_id(72), "RETRY", EncodedException("Retry", ("again",),
                              "celery.exceptions"), traceback="..."),
        "started": ResultRecord(_id(73), "STARTED", {"pid": 42, "hostname": "celery@host"}),
        "extended_child": ResultRecord(_id(74), "SUCCESS", [1, 2], date_done=done,
                                       group_id=_id(40), parent_id=_id(1),
                                       children=[[[_id(75), None], None]],
                                       extended={"name": "interop.add", "args": [1, 2],
                                                 "kwargs": {}, "worker": "celery@host",
                                                 "retries": 0, "queue": "celery"}),
    }  # fmt: skip
    for name, record in records.items():
        value = encode_result(record).decode()
        write(
            f"synthetic/results/{name}",
            f"a {record.status} result record",
            "results",
            {"key": f"celery-task-meta-{record.task_id}", "value": value},
            json.loads(value),
        )
    host = "celery@worker1"
    common = {"hostname": host, "timestamp": 1893456000.25, "utcoffset": 0, "pid": 4242,
              "clock": 17}  # fmt: skip
    worker = {"freq": 2.0, "active": 1, "processed": 40, "loadavg": [0.5, 0.4, 0.3],
              "sw_ident": "py-celeriac", "sw_ver": "0.1.0", "sw_sys": "Linux"}  # fmt: skip
    task_id = _id(80)
    events = {
        "task_sent": {"type": "task-sent", "uuid": task_id, "root_id": task_id,
                      "parent_id": None, "name": "interop.add", "args": "(2, 3)",
                      "kwargs": "{}", "retries": 0, "eta": None, "expires": None,
                      "queue": "celery", "exchange": "", "routing_key": "celery"},
        "task_received": {"type": "task-received", "uuid": task_id, "name": "interop.add",
                          "args": "(2, 3)", "kwargs": "{}", "root_id": task_id,
                          "parent_id": None, "retries": 0, "eta": None, "expires": None},
        "task_started": {"type": "task-started", "uuid": task_id},
        "task_succeeded": {"type": "task-succeeded", "uuid": task_id, "result": "5",
                           "runtime": 0.0012},
        "task_failed": {"type": "task-failed", "uuid": task_id,
                        "exception": "ValueError('boom')", "traceback": "Traceback ..."},
        "task_retried": {"type": "task-retried", "uuid": task_id,
                         "exception": "Retry('again')", "traceback": "Traceback ..."},
        "task_revoked": {"type": "task-revoked", "uuid": task_id, "terminated": True,
                         "signum": 15, "expired": False},
        "task_rejected": {"type": "task-rejected", "uuid": task_id, "requeue": False},
        "worker_online": {"type": "worker-online", **worker},
        "worker_heartbeat": {"type": "worker-heartbeat", **worker},
        "worker_offline": {"type": "worker-offline", **worker},
    }  # fmt: skip
    for name, fields in events.items():
        body = {**fields, **common}
        body = {"type": body.pop("type"), **body}
        write(f"synthetic/events/{name}", f"the {body['type']} event body", "event",
              {"exchange": "celeryev", "routing_key": body["type"].replace("-", "."),
               "headers": {"hostname": host}, "body": json.dumps(body)}, body)  # fmt: skip
    reply_to = {"exchange": "reply.celery.pidbox", "routing_key": _id(98)}
    controls = {
        "ping_all": {"method": "ping", "arguments": {}, "destination": None, "pattern": None,
                     "matcher": None, "ticket": _id(85), "reply_to": reply_to},
        "revoke_terminate": {"method": "revoke", "arguments": {"task_id": [task_id],
                             "terminate": True, "signal": "SIGTERM"}, "destination": None,
                             "pattern": None, "matcher": None},
        "rate_limit_one_node": {"method": "rate_limit", "arguments": {
                                "task_name": "interop.add", "rate_limit": "10/m"},
                                "destination": [host], "pattern": None, "matcher": None,
                                "ticket": _id(86), "reply_to": reply_to},
        "shutdown_by_pattern": {"method": "shutdown", "arguments": {}, "destination": None,
                                "pattern": "celery@worker*", "matcher": "glob"},
    }  # fmt: skip
    for name, body in controls.items():
        write(f"synthetic/control/{name}", f"a {body['method']} control request", "control",
              {"exchange": "celery.pidbox", "routing_key": "",
               "headers": {"clock": 3, "expires": 1893456010.0}, "body": json.dumps(body)},
              body)  # fmt: skip
    print(f"wrote vectors under {ROOT}")


if __name__ == "__main__":
    main()
