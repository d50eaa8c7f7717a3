"""Turn a raw capture into a vector file: decode the wire with plain libraries, check it
against what the case sent, and keep only what is deterministic in ``expect``.

Decoding here deliberately avoids Kombu's consumer and deserializer: the body is taken apart
with ``base64``/``zlib``/``bz2``/``json``/``msgpack``/``yaml`` so the vector records what is on
the wire (tagged JSON stays tagged). Kombu is used only to compute the *expected* tagged form
of the arguments the case passed (``kombu.utils.json.dumps``).
"""

from __future__ import annotations

import base64
import bz2
import datetime as dt
import json
import zlib
from pathlib import Path
from typing import Any

import celery
import kombu
from kombu.utils.json import dumps as kombu_dumps

#: Headers left out of ``expect.headers``: ``origin`` (host name and pid of the sender) differs
#: from run to run, and ``compression`` is Kombu's, not Celery's (it is ``expect.compression``).
NON_TASK_HEADERS = frozenset({"origin", "compression"})
#: Message properties that are deterministic for a given call. reply_to is Celery's per-thread
#: oid, which the capture pins (``capture.FIXED_REPLY_TO``); Kombu's delivery_tag is a fresh
#: uuid4 and stays in ``wire`` only.
STABLE_PROPERTIES = ("correlation_id", "reply_to", "delivery_mode", "priority", "expiration")

BROKER_LABELS = {"redis": "Redis", "amqp": "RabbitMQ (AMQP 0-9-1)", "sqs": "SQS (ElasticMQ)"}


class CaptureMismatch(AssertionError):
    """Celery put something on the wire other than what the case sent."""


def decode_wire(envelope: str, wire: dict[str, Any]) -> dict[str, Any]:
    """The message in a wire record: content type/encoding, headers, properties, raw body."""
    if envelope == "amqp":
        props = dict(wire["properties"])
        return {
            "content_type": props.pop("content_type", None),
            "content_encoding": props.pop("content_encoding", None),
            "headers": props.pop("headers", {}) or {},
            "properties": props,
            "body": base64.b64decode(wire["body_b64"]),
        }
    if envelope == "redis":
        envelope_json = json.loads(wire["payload"])
    elif envelope == "sqs":
        # Kombu base64-encodes the whole JSON envelope into the SQS MessageBody.
        envelope_json = json.loads(base64.b64decode(wire["body"]).decode("utf-8"))
    else:
        raise ValueError(f"unknown envelope {envelope!r}")
    props = dict(envelope_json["properties"])
    body = envelope_json["body"]
    if props.get("body_encoding") == "base64":
        raw = base64.b64decode(body)
    else:
        raw = body.encode("utf-8") if isinstance(body, str) else body
    return {
        "content_type": envelope_json.get("content-type"),
        "content_encoding": envelope_json.get("content-encoding"),
        "headers": envelope_json.get("headers") or {},
        "properties": props,
        "body": raw,
    }


def decode_body(msg: dict[str, Any]) -> Any:
    raw: bytes = msg["body"]
    compression = msg["headers"].get("compression")
    if compression == "application/x-gzip":
        raw = zlib.decompress(raw)
    elif compression == "application/x-bz2":
        raw = bz2.decompress(raw)
    elif compression is not None:
        raise CaptureMismatch(f"unexpected compression {compression!r}")
    ctype = msg["content_type"]
    if ctype == "application/json":
        return json.loads(raw.decode(msg["content_encoding"] or "utf-8"))
    if ctype == "application/x-msgpack":
        import msgpack

        return msgpack.unpackb(raw, raw=False)
    if ctype == "application/x-yaml":
        import yaml

        return yaml.safe_load(raw.decode(msg["content_encoding"] or "utf-8"))
    raise CaptureMismatch(f"unexpected content type {ctype!r}")


def tagged(value: Any) -> Any:
    """What Kombu's JSON serializer makes of ``value``, parsed back into plain JSON."""
    return json.loads(kombu_dumps(value))


def _check(what: str, got: Any, want: Any) -> None:
    if got != want:
        raise CaptureMismatch(f"{what}: Celery wrote {got!r}, the case sent {want!r}")


def build_expect(case, sent, msg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ``expect`` block and ``compare`` list for one captured message."""
    body = decode_body(msg)
    headers = msg["headers"]
    props = msg["properties"]
    if isinstance(body, dict):  # protocol 1: everything rides in the body
        protocol, task, tid = 1, body.get("task"), body.get("id")
        args, kwargs, embed = body.get("args"), body.get("kwargs"), None
    else:
        protocol, task, tid = 2, headers.get("task"), headers.get("id")
        args, kwargs, embed = body
    _check("protocol", protocol, case.protocol)
    _check("task", task, sent.task)
    _check("id", tid, sent.id)
    want_args, want_kwargs = tagged(list(sent.args)), tagged(sent.kwargs)
    _check("args", args, want_args)
    _check("kwargs", kwargs, want_kwargs)
    expect: dict[str, Any] = {
        "protocol": protocol,
        "task": task,
        "id": tid,
        "content_type": msg["content_type"],
        "content_encoding": msg["content_encoding"],
        "compression": headers.get("compression"),
        "args": want_args,
        "kwargs": want_kwargs,
        # Python's repr of what was passed. Celery's own argsrepr header (saferepr) can differ:
        # it cuts nesting at task_repr_maxlevels and shows non-UTF-8 bytes as hex.
        "args_repr": repr(sent.args),
        "kwargs_repr": repr(sent.kwargs),
        "headers": {k: v for k, v in sorted(headers.items()) if k not in NON_TASK_HEADERS},
        "properties": {k: props[k] for k in STABLE_PROPERTIES if k in props},
    }
    compare = ["task", "id", "args", "kwargs", "headers", "properties"]
    if protocol == 2:
        expect["embed"] = embed
        compare.append("embed")
    else:
        expect["v1_body"] = body
        compare.append("v1_body")
    return expect, compare


def message_vector(
    envelope: str, case, index: int | None, wire: dict[str, Any], captured: str
) -> dict[str, Any]:
    sent = case.messages[index or 0]
    msg = decode_wire(envelope, wire)
    expect, compare = build_expect(case, sent, msg)
    suffix = "" if index is None else f"_{index}"
    desc = f"{case.call} sent by Celery {celery.__version__} / Kombu {kombu.__version__} to "
    desc += BROKER_LABELS[envelope]
    if index is not None:
        desc += f" (message {index + 1} of {len(case.messages)}, task {sent.id})"
    return {
        "format": 1,
        "name": f"captured/{envelope}/{case.name}{suffix}",
        "description": desc,
        "source": _source(captured),
        "envelope": envelope,
        "wire": wire,
        "expect": expect,
        "compare": compare,
    }


def _source(captured: str) -> dict[str, str]:
    return {
        "producer": "celery",
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "captured": captured,
    }


def result_vector(
    name: str, description: str, key: str, value: str, captured: str
) -> dict[str, Any]:
    record = json.loads(value)
    # date_done is the time of the run and a traceback names this machine's file paths.
    variable = {"date_done", "traceback"}
    expect = {k: v for k, v in sorted(record.items()) if k not in variable}
    return {
        "format": 1,
        "name": f"captured/results/{name}",
        "description": description,
        "source": _source(captured),
        "envelope": "results",
        "wire": {"key": key, "value": value},
        "expect": expect,
        "compare": list(expect),
    }


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def write_vector(out_dir: Path, vector: dict[str, Any]) -> Path:
    """Write ``vector`` (pretty JSON); keep the old ``captured`` date if ``expect`` is unchanged,
    so a re-run only changes files whose meaning changed or whose wire has random parts."""
    path = out_dir / f"{vector['name'].split('/', 1)[1]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old and old.get("expect") == vector["expect"]:
            vector["source"]["captured"] = old.get("source", {}).get("captured", today())
    text = json.dumps(vector, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
