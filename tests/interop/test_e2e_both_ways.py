"""The end-to-end scenarios run both ways between real Celery 5.7 and Celeriac, on Redis and on
RabbitMQ, results read back on both sides through a shared Redis result backend.

(a) a real Celery client (``interop/e2e/celery_scenarios.py``) against a Celeriac worker;
(b) a Celeriac client (``run_scenario`` below) against a real Celery worker
    (``interop/e2e/e2e_celery_app.py``, solo pool).

Both clients run the same scenarios and their observations meet the same expectations.
``async_task`` runs only against the Celeriac worker: Celery has no ``async def`` tasks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, chain, chord, group
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import AMQP_URL, REDIS_URL, require, unique

pytestmark = [pytest.mark.celery, pytest.mark.broker]

E2E_DIR = Path(__file__).resolve().parents[2] / "interop" / "e2e"
BROKERS = {"redis": REDIS_URL, "rabbitmq": AMQP_URL}
BACKEND = REDIS_URL.rsplit("/", 1)[0] + "/1"
COUNTERS = REDIS_URL.rsplit("/", 1)[0] + "/2"
TIMEOUT = 30.0

Observation = dict[str, Any]


def _value(expected: Any) -> Callable[[Observation], None]:
    def check(seen: Observation) -> None:
        assert seen["error"] is None, seen
        assert seen["value"] == expected, seen

    return check


def _delayed(expected: Any, at_least: float) -> Callable[[Observation], None]:
    def check(seen: Observation) -> None:
        _value(expected)(seen)
        assert seen["elapsed"] >= at_least, f"ran too early: {seen}"

    return check


def _raised(type_name: str, text: str) -> Callable[[Observation], None]:
    def check(seen: Observation) -> None:
        assert seen["error"] is not None, f"expected {type_name}: {seen}"
        assert seen["error"].startswith(f"{type_name}:") and text in seen["error"], seen

    return check


def _revoked(seen: Observation) -> None:
    assert seen["error"] is not None and "Revoked" in seen["error"].split(":")[0], seen
    assert seen["state"] == "REVOKED", seen


#: Scenario -> what both clients must observe.
EXPECT: dict[str, Callable[[Observation], None]] = {
    "delay_get": _value(5),
    "failure": _raised("ValueError", "boom"),
    "retry": _value(3),
    "countdown": _delayed(2, 1.4),
    "eta": _delayed(4, 1.4),
    "expires": _revoked,
    "chain": _value(10),
    "group": _value([0, 2, 4, 6, 8]),
    "chord": _value(12),
    "revoke": _revoked,
    "async_task": _value(42),
}
BOTH_WAYS = [name for name in EXPECT if name != "async_task"]


def define_tasks(app: App) -> None:
    """The Celeriac twins of ``interop/e2e/e2e_celery_app.py``'s tasks, under the same names."""
    import redis

    @app.task(name="e2e.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="e2e.tsum")
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    @app.task(name="e2e.fail")
    def fail(msg: str) -> None:
        raise ValueError(msg)

    @app.task(name="e2e.flaky", bind=True, max_retries=5)
    def flaky(self: Any, redis_url: str, key: str, failures: int) -> int:
        attempt = int(redis.Redis.from_url(redis_url).incr(key))
        if attempt <= failures:
            raise self.retry(exc=RuntimeError(f"attempt {attempt}"), countdown=0.1)
        return attempt

    @app.task(name="e2e.async_add")
    async def async_add(x: int, y: int) -> int:
        return x + y


def run_scenario(app: App, name: str) -> Observation:
    """Run one scenario as a Celeriac client, observed as ``celery_scenarios.py`` observes."""

    def sig(task: str, *args: Any) -> Any:
        return app.signature(f"e2e.{task}", args=args)

    def revoke_before_run() -> Any:
        result = sig("add", 1, 1).apply_async(countdown=4)
        result.revoke()
        return result

    now = datetime.now(UTC)
    senders: dict[str, Callable[[], Any]] = {
        "delay_get": lambda: sig("add", 2, 3).delay(),
        "failure": lambda: sig("fail", "boom").delay(),
        "retry": lambda: sig("flaky", COUNTERS, f"e2e-{uuid.uuid4().hex}", 2).delay(),
        "countdown": lambda: sig("add", 1, 1).apply_async(countdown=1.5),
        "eta": lambda: sig("add", 2, 2).apply_async(eta=now + timedelta(seconds=1.5)),
        "expires": lambda: sig("add", 3, 3).apply_async(expires=now - timedelta(seconds=60)),
        "chain": lambda: chain(sig("add", 1, 2), sig("add", 3), sig("add", 4)).apply_async(),
        "group": lambda: group(sig("add", i, i) for i in range(5)).apply_async(),
        "chord": lambda: chord([sig("add", i, i) for i in range(4)], sig("tsum")).apply_async(),
        "revoke": revoke_before_run,
        "async_task": lambda: sig("async_add", 20, 22).delay(),
    }
    started = time.monotonic()
    result = senders[name]()
    seen: Observation = {"value": None, "state": None, "error": None}
    try:
        seen["value"] = result.get(timeout=TIMEOUT)
    except Exception as exc:  # the observation records what get() raised
        seen["error"] = f"{type(exc).__name__}: {exc}"
    seen["elapsed"] = time.monotonic() - started
    seen["state"] = getattr(result, "state", None) if not hasattr(result, "results") else None
    return seen


@pytest.fixture(scope="module", params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    require("redis")
    require(str(request.param))
    celery_env.ensure(quiet=True)
    return BROKERS[str(request.param)]


@pytest.fixture(scope="module")
def celery_client_saw(broker: str) -> Iterator[dict[str, Observation]]:
    """Direction (a): every scenario sent by a real Celery client to one Celeriac worker."""
    queue = unique("e2e-celery-client")
    app = App("e2e-worker", broker=broker, backend=BACKEND, task_default_queue=queue)
    define_tasks(app)
    worker = run_worker(app, concurrency=4)
    try:
        proc = celery_env.run_script(
            E2E_DIR / "celery_scenarios.py",
            broker,
            BACKEND,
            queue,
            COUNTERS,
            ",".join(EXPECT),
            timeout=300,
        )
        yield json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        stop_worker(worker)
        app.close()


@pytest.fixture(scope="module")
def celery_worker_app(broker: str) -> Iterator[App]:
    """Direction (b): a Celeriac client app whose queue a real Celery worker consumes."""
    queue = unique("e2e-celery-worker")
    # Celery's workers on Redis honour only the eta header, so ETA tasks go out at once for them
    # (RabbitMQ's delay queues hand them over when due, to whichever worker consumes).
    app = App(
        "e2e-client",
        broker=broker,
        backend=BACKEND,
        task_default_queue=queue,
        task_eta_in_broker=broker != REDIS_URL,
    )
    with celery_env.CeleryWorker(
        E2E_DIR,
        "e2e_celery_app",
        broker_url=broker,
        backend_url=BACKEND,
        queues=[queue],
        env={"CELERIAC_E2E_QUEUE": queue},
        ready_timeout=90.0,
    ):
        yield app
    app.close()


@pytest.mark.parametrize("scenario", list(EXPECT))
def test_celery_client_celeriac_worker(
    scenario: str, celery_client_saw: dict[str, Observation]
) -> None:
    EXPECT[scenario](celery_client_saw[scenario])


@pytest.mark.parametrize("scenario", BOTH_WAYS)
def test_celeriac_client_celery_worker(scenario: str, celery_worker_app: App) -> None:
    EXPECT[scenario](run_scenario(celery_worker_app, scenario))
