"""SPEC §11.4 side by side: what Celery 5.7 runs, a Celeriac worker runs too.

Each tolerated producer fault is put on Redis by hand (no client library), once for a real Celery
5.7 worker and once for a Celeriac worker; both must run it and store SUCCESS with 2 + 3.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from interop import celery_env
from tests.brokers import REDIS_URL, require, unique
from tests.interop import harnesses
from tests.interop.test_matrix import conformance_app
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

BODY = [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def _backend() -> str:
    return REDIS_URL.rsplit("/", 1)[0] + "/1"


def _envelope(task_id: str, queue: str) -> dict[str, Any]:
    return {
        "body": base64.b64encode(json.dumps(BODY).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": "interop.add", "id": task_id, "root_id": task_id},
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


def _body_utf8(env: dict[str, Any]) -> None:
    env["properties"]["body_encoding"] = "utf-8"
    env["body"] = json.dumps(BODY)


def _body_utf8_upper(env: dict[str, Any]) -> None:
    _body_utf8(env)
    env["properties"]["body_encoding"] = "UTF-8"  # Kombu lowers it before comparing


def _compressed_gzip_label(env: dict[str, Any]) -> None:
    env["body"] = base64.b64encode(zlib.compress(json.dumps(BODY).encode())).decode()
    env["headers"]["compression"] = "application/x-gzip"
    env["content-encoding"] = "gzip"  # not "binary", not "utf-8": Kombu ignores it


def _content_encoding_binary(env: dict[str, Any]) -> None:
    env["content-encoding"] = "binary"


def _bare(env: dict[str, Any]) -> None:
    del env["content-encoding"]
    env["headers"] = {"task": "interop.add", "id": env["headers"]["id"]}
    env["body"] = base64.b64encode(json.dumps([[2, 3], {}, {}]).encode()).decode()


def _z_and_millis(env: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    env["headers"]["eta"] = (now + timedelta(seconds=0.5)).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3
    ] + "Z"
    env["headers"]["expires"] = (now + timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"
    ) + "123Z"


FAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "body_encoding_utf8": _body_utf8,
    "body_encoding_UTF8_upper_case": _body_utf8_upper,
    "compressed_content_encoding_gzip": _compressed_gzip_label,
    "content_encoding_binary": _content_encoding_binary,
    "missing_headers_and_embed_keys": _bare,
    "z_and_milli_nano_times": _z_and_millis,
}


@pytest.fixture(params=["celery", "celeriac"])
def worker_on(request: pytest.FixtureRequest) -> Iterator[str]:
    """A queue with a running worker of the given kind (conformance tasks, Redis results)."""
    require("redis")
    queue = unique(f"tolerated-{request.param}")
    if request.param == "celery":
        celery_env.ensure(quiet=True)
        with celery_env.CeleryWorker(
            harnesses.CLIENTS / "celery",
            "conformance_app",
            broker_url=REDIS_URL,
            backend_url=_backend(),
            queues=[queue],
            env={"CELERY_BROKER_URL": REDIS_URL, "CELERY_RESULT_BACKEND": _backend()},
        ):
            yield queue
        return
    from celeriac.worker import run_worker, stop_worker

    app = conformance_app(REDIS_URL, queue)
    worker = run_worker(app, concurrency=2)
    try:
        yield queue
    finally:
        stop_worker(worker)
        app.close()


def test_each_tolerated_fault_runs(worker_on: str) -> None:
    queue = worker_on
    broker = redis.Redis.from_url(REDIS_URL)
    results = redis.Redis.from_url(_backend())
    ids = {}
    try:
        for name, fault in FAULTS.items():
            task_id = str(uuid.uuid4())
            env = _envelope(task_id, queue)
            fault(env)
            broker.lpush(queue, json.dumps(env))
            ids[name] = task_id

        def stored() -> dict[str, Any] | None:
            got = {n: results.get(f"celery-task-meta-{i}") for n, i in ids.items()}
            return None if None in got.values() else got

        records = eventually(stored, timeout=60, what="a record for every tolerated message")
    finally:
        broker.delete(queue, f"{queue}.dlq")
        broker.close()
        results.close()
    for name, raw in records.items():
        meta = json.loads(raw)
        assert (meta["status"], meta["result"]) == ("SUCCESS", 5), (name, meta)
