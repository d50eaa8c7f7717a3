"""Real Celery 5.7 executes task messages that Celeriac's codec built.

For each broker (Redis, RabbitMQ) a real ``celery worker`` (solo pool, from the cached venv of
``interop/celery_env.py``) consumes a fresh queue with the Redis result backend. The test
builds a message with ``celeriac.protocol``, puts it on the broker with a plain client
(redis-py ``LPUSH``, pika ``basic_publish``) and reads the result record Celery stored under
``celery-task-meta-<id>``: it must say SUCCESS with result 5.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import pytest

from celeriac.protocol import TaskMessage, new_task_message
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.protocol.envelopes import redis as redis_envelope
from celeriac.protocol.tagged import from_tagged
from interop import celery_env
from tests.brokers import AMQP_URL, REDIS_URL, amqp_params, require, unique
from tests.waiting import eventually

pytestmark = [pytest.mark.celery, pytest.mark.broker]

APP_DIR = Path(__file__).resolve().parents[2] / "interop" / "capture"
APP_MODULE = "interop_app"  # interop.add / echo / tsum / fail
RESULT_TIMEOUT = 30.0
QUEUE_TIMEOUT = 30.0


def _backend_url() -> str:
    """The Redis result backend: the test Redis server, database 1."""
    return urlunsplit(urlsplit(REDIS_URL)._replace(path="/1"))


@dataclass
class RunningWorker:
    broker: str  # "redis" or "rabbitmq"
    queue: str
    worker: celery_env.CeleryWorker


def _wait_until_consumed_amqp(queue: str, worker: celery_env.CeleryWorker) -> None:
    """Wait until Celery has declared ``queue`` and consumes from it (bounded)."""
    import pika

    p = amqp_params()
    params = pika.ConnectionParameters(
        host=p.host,
        port=p.port,
        virtual_host=p.vhost,
        credentials=pika.PlainCredentials(p.user, p.password),
    )
    with pika.BlockingConnection(params) as conn:

        def consumed() -> bool:
            # Each poll opens a channel: a blocking call, so pika serves heartbeats meanwhile.
            ch = conn.channel()
            try:
                ok = ch.queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                return False  # 404: not declared yet
            ch.close()
            return bool(ok.method.consumer_count >= 1)

        eventually(
            consumed,
            QUEUE_TIMEOUT,
            f"Celery consuming from {queue!r}",
            interval=0.1,
            detail=lambda: worker.log()[-3000:],
        )


@pytest.fixture(scope="module")
def celery_python() -> Path:
    return celery_env.ensure()


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def running_worker(request: pytest.FixtureRequest, celery_python: Path) -> Iterator[RunningWorker]:
    broker = request.param
    require("redis")  # the result backend
    require(broker)
    broker_url = REDIS_URL if broker == "redis" else AMQP_URL
    queue = unique(f"celeriac-interop-{broker}")
    worker = celery_env.CeleryWorker(
        APP_DIR,
        APP_MODULE,
        broker_url=broker_url,
        backend_url=_backend_url(),
        queues=[queue],
        ready_timeout=60.0,
    )
    request.addfinalizer(lambda: _cleanup(broker, queue))
    request.addfinalizer(worker.stop)
    worker.start()
    if broker == "rabbitmq":
        _wait_until_consumed_amqp(queue, worker)
    yield RunningWorker(broker, queue, worker)


def _cleanup(broker: str, queue: str) -> None:
    if broker == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(*(queue + s for s in ("", *(f"\x06\x16{n}" for n in range(1, 10)))))
        client.close()
        return
    import pika

    p = amqp_params()
    params = pika.ConnectionParameters(
        host=p.host,
        port=p.port,
        virtual_host=p.vhost,
        credentials=pika.PlainCredentials(p.user, p.password),
    )
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.queue_delete(queue)
        ch.exchange_delete(queue)


def _publish(running: RunningWorker, msg: Any) -> None:
    if running.broker == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            payload = redis_envelope.pack(msg, queue=running.queue)
            key = redis_envelope.list_key(running.queue, msg.properties.priority)
            client.lpush(key, payload)
        finally:
            client.close()
        return
    import pika

    p = amqp_params()
    params = pika.ConnectionParameters(
        host=p.host,
        port=p.port,
        virtual_host=p.vhost,
        credentials=pika.PlainCredentials(p.user, p.password),
    )
    am = amqp_envelope.pack(msg)
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        # Celery declared a direct exchange named after the queue, bound with the queue's name.
        ch.basic_publish(
            exchange=running.queue,
            routing_key=running.queue,
            body=am.body,
            properties=pika.BasicProperties(**am.properties),
            mandatory=True,
        )


def _wait_for_result(task_id: str, worker: celery_env.CeleryWorker) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(_backend_url())
    key = f"celery-task-meta-{task_id}"

    def stored() -> bytes | None:
        return cast("bytes | None", client.get(key))  # as a plain client would: a GET a poll

    try:
        raw = eventually(
            stored,
            RESULT_TIMEOUT,
            key,
            interval=0.05,
            detail=lambda: f"worker log:\n{worker.log()[-4000:]}",
        )
    finally:
        client.close()
    record: dict[str, Any] = json.loads(raw)
    return record


_WHEN = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=timezone(timedelta(hours=2)))
_TAGGED_ARGS = [_WHEN, Decimal("-3.14159265358979323846"), UUID(int=7, version=4),
                b"\x00\xffbin", 2**100, "héllo 世界 🥕"]  # fmt: skip
_CALLBACK_ID = "00000000-0000-4000-8000-0000000000cb"
_LARGE_ARGS = ["x" * (1 << 20), 2**100, _WHEN]


def _echo_of(args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"args": args, "kwargs": kwargs}


# variant -> (message builder, [(task id to read, expected result)])
MESSAGES: dict[str, tuple[Callable[[str], TaskMessage], Callable[[TaskMessage], list[Any]]]] = {
    "args": (
        lambda queue: new_task_message("interop.add", args=[2, 3], kwargs={}),
        lambda m: [(m.id, 5)],
    ),
    "kwargs_priority": (
        lambda queue: new_task_message("interop.add", args=[], kwargs={"x": 2, "y": 3}, priority=7),
        lambda m: [(m.id, 5)],
    ),
    # Tagged types, a big integer and unicode, zlib-compressed, with an eta already past.
    "tagged_compressed_eta": (
        lambda queue: new_task_message(
            "interop.echo",
            args=_TAGGED_ARGS,
            kwargs={"when": _WHEN},
            compression="zlib",
            eta=datetime.now(UTC) - timedelta(seconds=1),
        ),
        lambda m: [(m.id, _echo_of(_TAGGED_ARGS, {"when": _WHEN}))],
    ),
    # A 1 MiB argument beside a big integer and a tagged value: the body past the sizes where
    # our JSON decoder walks instead of scanning, base64 by pybase64 on Redis.
    "large_args": (
        lambda queue: new_task_message("interop.echo", args=_LARGE_ARGS, kwargs={}),
        lambda m: [(m.id, _echo_of(_LARGE_ARGS, {}))],
    ),
    # A link callback in embed: Celery calls it with the parent's result, on the given queue.
    "link_callback": (
        lambda queue: new_task_message(
            "interop.add",
            args=[2, 3],
            link={
                "task": "interop.echo",
                "args": [],
                "kwargs": {},
                "options": {"task_id": _CALLBACK_ID, "queue": queue},
                "subtask_type": None,
                "immutable": False,
            },
        ),
        lambda m: [(m.id, 5), (_CALLBACK_ID, _echo_of([5], {}))],
    ),
}


@pytest.mark.parametrize("variant", sorted(MESSAGES))
def test_celery_worker_executes_our_message(running_worker: RunningWorker, variant: str) -> None:
    build, expected = MESSAGES[variant]
    msg = build(running_worker.queue)
    _publish(running_worker, msg)
    for task_id, result in expected(msg):
        record = _wait_for_result(task_id, running_worker.worker)
        assert record["status"] == "SUCCESS", (record, running_worker.worker.log()[-4000:])
        assert record["task_id"] == task_id
        assert from_tagged(record["result"]) == result
