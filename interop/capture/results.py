"""Capture Celery's result records: a real worker (solo pool) on Redis with the Redis backend.

Three records, each the exact string Celery's Redis backend stored under
``celery-task-meta-<id>``:

* ``success``: ``interop.add(2, 3)``
* ``failure``: ``interop.fail("boom")`` (raises ``ValueError``)
* ``extended``: ``interop.add(2, 3)`` with ``result_extended=True`` (a second worker run, since
  ``result_extended`` is an app setting the worker reads)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from cases import case_id
from interop_app import make_app
from vectors import result_vector, write_vector

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import celery_env  # noqa: E402  (interop/celery_env.py, stdlib only)

RESULT_QUEUE = "celeriac.capture.results"
WORKER_NAME = "capture@celeriac"

#: (case, task, args, description, extended)
RESULT_CASES: list[tuple[str, str, tuple[Any, ...], str, bool]] = [
    ("success", "interop.add", (2, 3), "interop.add(2, 3) executed: status SUCCESS", False),
    (
        "failure",
        "interop.fail",
        ("boom",),
        "interop.fail('boom') executed: raises ValueError, status FAILURE",
        False,
    ),
    (
        "extended",
        "interop.add",
        (2, 3),
        "interop.add(2, 3) executed with result_extended=True: status SUCCESS",
        True,
    ),
]


def _wait_for_key(client, key: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        value = client.get(key)
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no {key} in the result backend after {timeout:.0f}s")
        time.sleep(0.05)


def capture_results(broker_url: str, backend_url: str, out_dir: Path, captured: str) -> int:
    import redis

    backend = redis.Redis.from_url(backend_url)
    broker = redis.Redis.from_url(broker_url)
    written = 0
    for extended in (False, True):
        cases = [c for c in RESULT_CASES if c[4] is extended]
        ids = {c[0]: case_id(f"results/{c[0]}") for c in cases}
        backend.delete(*(f"celery-task-meta-{i}" for i in ids.values()))
        broker.delete(RESULT_QUEUE)
        worker = celery_env.CeleryWorker(
            HERE,
            "interop_app",
            broker_url=broker_url,
            backend_url=backend_url,
            queues=[RESULT_QUEUE],
            hostname=WORKER_NAME,
            env={"CELERIAC_RESULT_EXTENDED": "1" if extended else "0"},
        )
        app = make_app(broker_url, backend_url, result_extended=extended)
        with worker:
            for name, task, args, _desc, _ext in cases:
                app.send_task(task, args=args, task_id=ids[name], queue=RESULT_QUEUE)
            values = {
                name: _wait_for_key(backend, f"celery-task-meta-{ids[name]}", 30.0) for name in ids
            }
        app.close()
        for name, _task, _args, desc, _ext in cases:
            key = f"celery-task-meta-{ids[name]}"
            vector = result_vector(
                name,
                f"{desc}; the record Celery's Redis result backend stored "
                f"(worker {WORKER_NAME}, solo pool)",
                key,
                values[name].decode("utf-8"),
                captured,
            )
            write_vector(out_dir, vector)
            written += 1
    backend.close()
    broker.close()
    return written
