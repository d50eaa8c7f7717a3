"""Custom serializers registered in Kombu's shape carry tasks and results end to end."""

from __future__ import annotations

import json
import uuid

import pytest

from celeriac import App
from celeriac.serialization import register, registry, unregister
from celeriac.worker import run_worker, stop_worker
from tests.brokers import REDIS_URL, require
from tests.compat.harness import run_both, run_crossed


def _encode(value: object) -> str:
    return "REV" + json.dumps(value)[::-1]


def _decode(data: bytes) -> object:
    assert isinstance(data, bytes), "a decoder gets bytes, as Kombu gives them"
    text = data.decode()
    assert text.startswith("REV")
    return json.loads(text[3:][::-1])


def test_a_registered_serializer_carries_tasks_and_results() -> None:
    register("reversed-json", _encode, _decode, "application/x-reversed-json")
    try:
        assert registry()["reversed-json"] == "application/x-reversed-json"
        name = uuid.uuid4().hex[:8]
        app = App(
            "ser",
            broker=f"memory://{name}",
            backend=f"memory://{name}",
            task_serializer="reversed-json",
            result_serializer="reversed-json",
            accept_content=["json", "reversed-json"],
        )

        @app.task
        def echo(value: object) -> object:
            return {"got": value}

        worker = run_worker(app, concurrency=1)
        try:
            assert echo.delay([1, "two"]).get(timeout=10) == {"got": [1, "two"]}
        finally:
            stop_worker(worker)
    finally:
        unregister("reversed-json")
    assert "reversed-json" not in registry()


def test_built_in_serializers_cannot_be_replaced() -> None:
    with pytest.raises(ValueError, match="built-in"):
        register("json", _encode, _decode, "application/json")


def test_a_registered_serializer_side_by_side_with_celery() -> None:
    """The serializer_app layout registers one serializer in Kombu's shape (its copies differ
    in that import too: ``kombu.serialization`` becomes ``celeriac.serialization``); task
    messages and stored results use it, and Celery 5.7 and Celeriac, each as client or worker,
    observe the same."""
    require("redis")
    backend = REDIS_URL.rsplit("/", 1)[0] + "/4"
    args = ("serializer_app", "proj", "serializer_app.py", REDIS_URL, backend)
    celery, celeriac = run_both(*args)
    assert celery == {
        "echo": {"got": [1, "two", {"k": None}]},
        "stored with it": True,
        "chord": 3,
        "apply_async(serializer='json')": {"got": 2},
    }
    assert celeriac == celery
    celery_client, celeriac_client = run_crossed(*args)
    assert celery_client == celery
    assert celeriac_client == celery
