"""Custom serializers registered in Kombu's shape carry tasks and results end to end."""

from __future__ import annotations

import json
import uuid

import pytest

from celeriac import App
from celeriac.serialization import register, registry, unregister
from celeriac.worker import run_worker, stop_worker


def _encode(value: object) -> str:
    return "REV" + json.dumps(value)[::-1]


def _decode(text: str) -> object:
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
