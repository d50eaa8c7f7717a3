"""Capture foreign vectors: the exact messages each foreign client puts on each broker.

    eval "$(scripts/services env)"
    .venv/bin/python -m interop.clients.capture                      # every client and broker
    .venv/bin/python -m interop.clients.capture --clients celery-node --brokers redis

For each client (celery-node 0.5.9, rusty-celery 0.5.5, Celery 5.7.0 as the reference) and broker
(Redis, RabbitMQ), the harness of ``interop/clients/<client>`` (built and cached by
``tests/interop/harnesses.py``) sends the conformance set (``celeriac interop cases --role
client``) to the queue ``celeriac.foreign.<client>``. Every message is taken off the broker with
a plain client (redis-py ``BRPOP``, pika), exactly as the client left it, and written as one
vector (SPEC.md Appendix A) to ``protocol/vectors/foreign/<client>/<broker>/<case>.json``.

``expect`` is read from the wire with plain ``json``/``base64`` (never the reference codec, so the
unit tests check the codec against it); ``source`` records client, version, broker, case, date,
and what ``celeriac interop verify`` said of the message (the Appendix B deviations it found).
The folder of a (client, broker) pair is replaced only when the whole set was captured.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from celeriac.interop.cases import cases_for, expected_messages
from celeriac.interop.checks import FAIL, RawMessage, apply_deviations, check_message
from celeriac.interop.raw import AmqpReader, RawReader, RedisReader
from celeriac.interop.verify import client_capabilities
from interop import celery_env
from tests.interop import harnesses

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "protocol" / "vectors" / "foreign"
CLIENTS = ("celery-node", "rusty-celery", "celery")
BROKERS = ("redis", "amqp")
BROKER_LABELS = {"redis": "Redis", "amqp": "RabbitMQ (AMQP 0-9-1)"}
COMMAND = ".venv/bin/python -m interop.clients.capture"
#: Headers left out of ``expect.headers``: the sender's host and pid (Celery's ``origin``).
VARIABLE_HEADERS = frozenset({"origin"})
STABLE_PROPERTIES = ("correlation_id", "reply_to", "delivery_mode", "priority", "expiration")


def broker_urls() -> dict[str, str]:
    return {
        "redis": os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "amqp": os.environ.get("CELERIAC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    }


def client_version(client: str) -> dict[str, str]:
    """The registry package and version of each client's harness."""
    if client == "celery-node":
        pkg = harnesses.node_modules() / "celery-node" / "package.json"
        return {"package": "npm celery-node", "version": json.loads(pkg.read_text())["version"]}
    if client == "rusty-celery":
        lock = (harnesses.CLIENTS / "rust" / "Cargo.lock").read_text().split("[[package]]")
        entry = next(p for p in lock if '\nname = "celery"\n' in p)
        version = entry.split('\nversion = "', 1)[1].split('"', 1)[0]
        return {"package": "crates.io celery", "version": version}
    return {
        "package": "PyPI celery",
        "version": celery_env.CELERY_VERSION,
        "kombu": celery_env.KOMBU_VERSION,
    }


class _AmqpDeliveryReader(AmqpReader):
    """AmqpReader that also keeps the delivery's exchange, routing key and redelivered flag."""

    def __init__(self, url: str, queue: str) -> None:
        super().__init__(url, queue)
        self.methods: list[dict[str, Any]] = []

    def delivered(self, method: Any) -> None:
        self.methods.append(
            {
                "exchange": method.exchange,
                "routing_key": method.routing_key,
                "redelivered": bool(method.redelivered),
            }
        )


def _purge(broker: str, url: str, queue: str) -> None:
    if broker == "redis":
        import redis

        r = redis.Redis.from_url(url)
        r.delete(queue, *(queue + s for s in ("\x06\x163", "\x06\x166", "\x06\x169")))
        r.close()


def _open(broker: str, url: str, queue: str) -> RawReader:
    if broker == "redis":
        return RedisReader(url, queue)
    reader = _AmqpDeliveryReader(url, queue)
    reader.channel.queue_purge(queue)
    return reader


def capture_pair(
    client: str, broker: str, url: str, timeout: float
) -> list[tuple[RawMessage, Any]]:
    """Run the client's harness against ``broker``; every message it left, in order."""
    queue = f"celeriac.foreign.{client}"
    _purge(broker, url, queue)
    reader = _open(broker, url, queue)
    wanted = sum(
        len(expected_messages(c))
        for c in cases_for("client")
        if c["name"] in client_capabilities(client, None).supports and not c.get("report")
    )
    errors: list[BaseException] = []
    backend = broker_urls()["redis"].rsplit("/", 1)[0] + "/1"

    def run() -> None:
        try:
            harnesses.send(client, url, backend, queue, cases_for("client"))
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=run, daemon=True)
    got: list[tuple[RawMessage, Any]] = []
    try:
        sender.start()
        deadline = time.monotonic() + timeout
        while len(got) < wanted and time.monotonic() < deadline:
            raw = reader.read(1.0)
            if raw is not None:
                method = reader.methods[-1] if isinstance(reader, _AmqpDeliveryReader) else None
                got.append((raw, method))
        sender.join(timeout=max(deadline - time.monotonic(), 1))
        # Anything beyond the set would be a bug of the harness: take it too, so it shows.
        while (raw := reader.read(1.0)) is not None:
            method = reader.methods[-1] if isinstance(reader, _AmqpDeliveryReader) else None
            got.append((raw, method))
        if broker == "amqp" and isinstance(reader, _AmqpDeliveryReader):
            reader.channel.cancel()
            reader.channel.queue_delete(queue)
    finally:
        reader.close()
    if errors:
        raise RuntimeError(f"{client} on {broker}: the harness failed") from errors[0]
    if len(got) != wanted:
        raise RuntimeError(f"{client} on {broker}: {len(got)} messages, expected {wanted}")
    return got


def _plain_decode(raw: RawMessage) -> dict[str, Any]:
    """The message taken apart with json/base64 only: content type, headers, properties, body."""
    if raw.envelope == "amqp":
        props = {k: v for k, v in raw.amqp_properties.items() if v is not None}
        content_type = props.pop("content_type", None)
        encoding = props.pop("content_encoding", None)
        headers = props.pop("headers", None) or {}
        body_bytes = raw.data
    else:
        env = json.loads(raw.data)
        props = dict(env.get("properties") or {})
        content_type = env.get("content-type")
        encoding = env.get("content-encoding")
        headers = env.get("headers") or {}
        body = env["body"]
        if props.get("body_encoding") == "base64":
            body_bytes = base64.b64decode(body)
        else:
            body_bytes = body.encode("utf-8")
    if content_type != "application/json":
        raise RuntimeError(f"unexpected content type {content_type!r}")
    return {
        "content_type": content_type,
        "content_encoding": encoding,
        "headers": headers,
        "properties": props,
        "body": json.loads(body_bytes.decode(encoding or "utf-8")),
    }


def semantic_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """The headers as a receiver understands them (SPEC §2.2, §2.3): a null header is an absent
    one (its default applies), and ``eta``/``expires`` are instants, written as ``isoformat()``.
    What the client wrote, exactly, stays in ``wire``."""
    out: dict[str, Any] = {}
    for key, value in sorted(headers.items()):
        if key in VARIABLE_HEADERS or value is None:
            continue
        if key in ("eta", "expires") and isinstance(value, str):
            value = dt.datetime.fromisoformat(value).isoformat()
        out[key] = value
    return out


def vector(
    client: str,
    broker: str,
    name: str,
    raw: RawMessage,
    method: dict[str, Any] | None,
    verify: dict[str, Any],
    meta: dict[str, str],
) -> dict[str, Any]:
    if raw.envelope == "amqp":
        props = {k: v for k, v in raw.amqp_properties.items() if v is not None}
        wire: dict[str, Any] = {
            **(method or {}),
            "body_b64": base64.b64encode(raw.data).decode("ascii"),
            "properties": props,
        }
    else:
        wire = {"queue": raw.queue, "key": raw.list_key, "payload": raw.data.decode("utf-8")}
    msg = _plain_decode(raw)
    args, kwargs, embed = msg["body"]
    headers = msg["headers"]
    props = msg["properties"]
    expect = {
        "protocol": 2,
        "task": headers.get("task"),
        "id": headers.get("id"),
        "content_type": msg["content_type"],
        "content_encoding": msg["content_encoding"],
        "compression": headers.get("compression"),
        "args": args,
        "kwargs": kwargs,
        "headers": semantic_headers(headers),
        "properties": {k: props[k] for k in STABLE_PROPERTIES if props.get(k) is not None},
        "embed": embed,
    }
    label = f"{meta['package']} {meta['version']}"
    return {
        "format": 1,
        "name": f"foreign/{client}/{broker}/{name}",
        "description": (
            f"The conformance case {name} as {client} ({label}) puts it on "
            f"{BROKER_LABELS[broker]}, sent by interop/clients/{_folder(client)}."
        ),
        "source": {
            "producer": client,
            "client": client,
            **meta,
            "broker": broker,
            "case": name,
            "captured": dt.datetime.now(dt.UTC).date().isoformat(),
            "captured_by": COMMAND,
            "verify": verify,
        },
        "envelope": broker,
        "wire": wire,
        "expect": expect,
        "compare": ["task", "id", "args", "kwargs", "headers", "properties", "embed"],
    }


def _folder(client: str) -> str:
    return {"celery-node": "node", "rusty-celery": "rust"}.get(client, "celery")


def write_pair(client: str, broker: str, url: str, out: Path, timeout: float) -> int:
    meta = client_version(client)
    cases = cases_for("client")
    files: dict[str, dict[str, Any]] = {}
    for raw, method in capture_pair(client, broker, url, timeout):
        outcomes, which = check_message(raw, cases)
        if which is None:
            raise RuntimeError(f"{client} on {broker}: a message of no case: {raw.data[:200]!r}")
        case_name, index = which
        case = next(c for c in cases if c["name"] == case_name)
        name = case_name if len(expected_messages(case)) == 1 else f"{case_name}_{index}"
        outcomes = apply_deviations(outcomes, client)
        verify = {
            "deviations": sorted({o.deviation.split(":")[0] for o in outcomes if o.deviation}),
            "failed": sorted({f"{o.check} {o.path}" for o in outcomes if o.status == FAIL}),
        }
        if name in files:
            raise RuntimeError(f"{client} on {broker}: {name} sent twice")
        files[name] = vector(client, broker, name, raw, method, verify, meta)
    folder = out / client / broker
    tmp = folder.with_name(f".{broker}.{uuid.uuid4().hex}")
    tmp.mkdir(parents=True)
    for name, data in sorted(files.items()):
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        (tmp / f"{name}.json").write_text(text, encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--brokers", default=",".join(BROKERS), help="redis,amqp")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--timeout", type=float, default=90.0)
    opts = parser.parse_args(argv)
    urls = broker_urls()
    for client in opts.clients.split(","):
        if client not in CLIENTS:
            parser.error(f"unknown client {client!r}")
        for broker in opts.brokers.split(","):
            if broker not in BROKERS:
                parser.error(f"unknown broker {broker!r}")
            n = write_pair(client, broker, urls[broker], opts.out, opts.timeout)
            print(f"{client:13} {broker:6} {n:3} vectors -> {opts.out / client / broker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
