"""Run the both-ways end-to-end scenarios as a real Celery 5.7 client; print one JSON object.

python celery_scenarios.py BROKER BACKEND QUEUE COUNTER_REDIS_URL SCENARIO[,SCENARIO...]

Each scenario's observation is ``{"value", "state", "error", "elapsed"}``; the pytest side
(``tests/interop/test_e2e_both_ways.py``) holds the expectations, shared with the Celeriac client.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from celery import Celery, chain, chord, group

TIMEOUT = 30


def main() -> None:
    broker, backend, queue, counter_url, names = sys.argv[1:6]
    app = Celery("celeriac-e2e-client", broker=broker, backend=backend, set_as_current=True)
    app.conf.update(task_default_queue=queue, task_serializer="json", enable_utc=True)

    def sig(name, *args):
        return app.signature(f"e2e.{name}", args=args)

    def run(send):
        started = time.monotonic()
        result = send()
        out = {"value": None, "state": None, "error": None}
        try:
            out["value"] = result.get(timeout=TIMEOUT)
        except Exception as exc:  # the observation records what get() raised
            out["error"] = f"{type(exc).__name__}: {exc}"
        out["elapsed"] = time.monotonic() - started
        out["state"] = getattr(result, "state", None) if not hasattr(result, "results") else None
        return out

    def revoke_before_run():
        result = sig("add", 1, 1).apply_async(countdown=4)
        app.control.revoke(result.id)
        return result

    scenarios = {
        "delay_get": lambda: run(lambda: sig("add", 2, 3).delay()),
        "failure": lambda: run(lambda: sig("fail", "boom").delay()),
        "retry": lambda: run(
            lambda: sig("flaky", counter_url, f"e2e-{uuid.uuid4().hex}", 2).delay()
        ),
        "countdown": lambda: run(lambda: sig("add", 1, 1).apply_async(countdown=1.5)),
        "eta": lambda: run(
            lambda: sig("add", 2, 2).apply_async(eta=datetime.now(UTC) + timedelta(seconds=1.5))
        ),
        "expires": lambda: run(
            lambda: sig("add", 3, 3).apply_async(expires=datetime.now(UTC) - timedelta(seconds=60))
        ),
        "chain": lambda: run(lambda: chain(sig("add", 1, 2), sig("add", 3), sig("add", 4))()),
        "group": lambda: run(lambda: group(sig("add", i, i) for i in range(5))()),
        "chord": lambda: run(lambda: chord([sig("add", i, i) for i in range(4)])(sig("tsum"))),
        "revoke": lambda: run(revoke_before_run),
        "async_task": lambda: run(lambda: app.signature("e2e.async_add", args=(20, 22)).delay()),
    }
    print(json.dumps({name: scenarios[name]() for name in names.split(",")}))


if __name__ == "__main__":
    main()
