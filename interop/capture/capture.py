"""Capture golden vectors from real Celery 5.7.0 / Kombu 5.7.0 (run with the Celery venv).

    interop/capture/run.sh [--envelopes redis,amqp,sqs,results] [--cases a,b] [--out DIR]

For every case in ``cases.py`` and every envelope, the queue is purged, Celery makes the one
call, and the raw entries are read back with a plain client (``raw_readers.py``), checked
against what was sent and written to ``<out>/<envelope>/<case>[_<n>].json``. Result records
come from a real worker (``results.py``).

Broker addresses: ``CELERIAC_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``; the result
backend is the same server, db 1, or ``CELERIAC_CAPTURE_BACKEND_URL``),
``CELERIAC_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672//``),
``CELERIAC_TEST_SQS_ENDPOINT`` (default ``http://127.0.0.1:9324``; skipped when it does not
answer; Kombu's broker URL is ``sqs://celeriac:celeriac@<host>:<port>//``, region us-east-1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from cases import FIXED_NOW, Case, all_cases, case_id  # noqa: E402
from interop_app import make_app  # noqa: E402
from raw_readers import AmqpReader, RedisReader, SqsReader  # noqa: E402
from vectors import (  # noqa: E402
    CaptureMismatch,
    decode_body,
    decode_wire,
    message_vector,
    today,
    write_vector,
)

QUEUE_PREFIX = "celeriac.capture."
SQS_REGION = "us-east-1"
SQS_KEY, SQS_SECRET = "celeriac", "celeriac"  # ElasticMQ takes any credentials
#: Celery's per-thread oid (the reply_to of every message and of frozen signatures) is a uuid3
#: of host, pid and thread; the capture pins it so reply_to is the same on every run.
FIXED_REPLY_TO = case_id("capture", "reply_to")


def redis_url() -> str:
    return os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def backend_url() -> str:
    override = os.environ.get("CELERIAC_CAPTURE_BACKEND_URL")
    if override:
        return override
    return urlunparse(urlparse(redis_url())._replace(path="/1"))


def amqp_url() -> str:
    return os.environ.get("CELERIAC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def sqs_endpoint() -> str:
    return os.environ.get("CELERIAC_TEST_SQS_ENDPOINT", "http://127.0.0.1:9324")


def sqs_broker_url() -> str:
    endpoint = urlparse(sqs_endpoint())
    return f"sqs://{SQS_KEY}:{SQS_SECRET}@{endpoint.hostname}:{endpoint.port or 9324}//"


def sqs_unavailable() -> str | None:
    """None when the SQS endpoint answers ListQueues, else why not."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        return f"boto3 is not importable in the Celery venv: {exc}"
    try:
        client = boto3.client(
            "sqs",
            endpoint_url=sqs_endpoint(),
            region_name=SQS_REGION,
            aws_access_key_id=SQS_KEY,
            aws_secret_access_key=SQS_SECRET,
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )
        client.list_queues()
    except Exception as exc:
        return f"SQS endpoint {sqs_endpoint()} does not answer ListQueues: {exc}"
    return None


def make_reader(envelope: str):
    if envelope == "redis":
        return RedisReader(redis_url())
    if envelope == "amqp":
        return AmqpReader(amqp_url())
    return SqsReader(sqs_endpoint(), SQS_REGION, SQS_KEY, SQS_SECRET)


def broker_url_for(envelope: str) -> str:
    return {"redis": redis_url, "amqp": amqp_url, "sqs": sqs_broker_url}[envelope]()


def _pinned_app(broker: str, protocol: int):
    app = make_app(broker, backend_url(), task_protocol=protocol)
    app.now = lambda: FIXED_NOW  # countdown / expires become fixed datetimes
    app._local.oid = FIXED_REPLY_TO  # what app.thread_oid returns in this (the main) thread
    return app


def _order(case: Case, envelope: str, wires: list[dict]) -> list[dict]:
    """Put captured messages in the order the case sent them (matched by task id)."""
    by_id = {}
    for wire in wires:
        msg = decode_wire(envelope, wire)
        body = decode_body(msg)
        tid = body.get("id") if isinstance(body, dict) else msg["headers"].get("id")
        by_id[tid] = wire
    want = [s.id for s in case.messages]
    if sorted(by_id) != sorted(want):
        raise CaptureMismatch(f"{case.name}: captured task ids {sorted(by_id)}, expected {want}")
    return [by_id[i] for i in want]


def capture_envelope(envelope: str, cases: list[Case], out_dir: Path, captured: str) -> int:
    reader = make_reader(envelope)
    apps = {p: _pinned_app(broker_url_for(envelope), p) for p in (1, 2)}
    written = 0
    try:
        for case in cases:
            queue = QUEUE_PREFIX + case.name
            reader.purge(queue)
            case.send(apps[case.protocol], queue)
            wires = reader.drain(queue, expected=len(case.messages))
            if len(wires) != len(case.messages):
                raise CaptureMismatch(
                    f"{envelope}/{case.name}: read {len(wires)} messages from {queue}, "
                    f"expected {len(case.messages)}"
                )
            wires = _order(case, envelope, wires)
            multi = len(wires) > 1
            for i, wire in enumerate(wires):
                vector = message_vector(envelope, case, i if multi else None, wire, captured)
                path = write_vector(out_dir, vector)
                written += 1
                if envelope == "redis" and case.name == "priority":
                    print(f"  {envelope}/{case.name}: landed in list key {wire['key']!r}")
                print(f"  wrote {path.relative_to(out_dir)}")
    finally:
        for app in apps.values():
            app.close()
        reader.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Capture golden vectors from real Celery.")
    parser.add_argument("--envelopes", default="redis,amqp,sqs,results")
    parser.add_argument("--cases", default="", help="comma-separated case names (default all)")
    parser.add_argument("--out", type=Path, default=REPO / "protocol" / "vectors" / "captured")
    ns = parser.parse_args(argv)

    cases = all_cases()
    if ns.cases:
        wanted = set(ns.cases.split(","))
        unknown = wanted - {c.name for c in cases}
        if unknown:
            parser.error(f"unknown cases: {sorted(unknown)}")
        cases = [c for c in cases if c.name in wanted]
    envelopes = [e for e in ns.envelopes.split(",") if e]
    captured = today()
    counts: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for envelope in envelopes:
        started = time.monotonic()
        print(f"== {envelope}")
        if envelope == "sqs":
            why = sqs_unavailable()
            if why:
                print(f"  SKIPPED sqs: {why}")
                skipped[envelope] = why
                continue
        if envelope == "results":
            from results import capture_results

            counts[envelope] = capture_results(redis_url(), backend_url(), ns.out, captured)
        elif envelope in ("redis", "amqp", "sqs"):
            counts[envelope] = capture_envelope(envelope, cases, ns.out, captured)
        else:
            parser.error(f"unknown envelope {envelope!r}")
        print(f"  {counts[envelope]} vectors in {time.monotonic() - started:.1f}s")
    print("summary: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    for envelope, why in skipped.items():
        print(f"skipped {envelope}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
