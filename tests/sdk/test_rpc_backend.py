"""The rpc:// result backend: results come back as messages to the caller's reply queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App, chord
from celeriac.worker import run_worker, stop_worker
from tests.brokers import unique
from tests.transports.conftest import url_for

RPC_BROKERS = ("amqp", "redis", "sqlite")


@pytest.fixture(params=RPC_BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    application = App(
        "rpc",
        broker=url_for(str(request.param), tmp_path),
        backend="rpc://",
        task_default_queue=unique("rpc"),
    )

    @application.task(name="rpc.add")
    def add(x: int, y: int) -> int:
        return x + y

    @application.task(name="rpc.fail")
    def fail(msg: str) -> None:
        raise ValueError(msg)

    worker = run_worker(application, concurrency=4)
    yield application
    stop_worker(worker)
    application.close()


def test_result_comes_back_to_the_caller(app: App) -> None:
    result = app.send_task("rpc.add", (2, 3))
    assert result.get(timeout=20) == 5
    assert result.state == "SUCCESS"
    assert app.backend.reply_queue() is not None


def test_failure_is_raised_as_its_type(app: App) -> None:
    with pytest.raises(ValueError, match="boom"):
        app.send_task("rpc.fail", ("boom",)).get(timeout=20)


def test_replies_for_other_tasks_are_kept_until_asked_for(app: App) -> None:
    results = [app.send_task("rpc.add", (i, i)) for i in range(20)]
    # Read them last first: earlier replies arrive while waiting and must not be lost.
    assert [r.get(timeout=20) for r in reversed(results)] == [2 * i for i in reversed(range(20))]


def test_threads_wait_on_one_reply_queue(app: App) -> None:
    got: dict[int, int] = {}

    def call(i: int) -> None:
        got[i] = app.send_task("rpc.add", (i, 1)).get(timeout=20)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got == {i: i + 1 for i in range(8)}


def test_chords_are_refused_with_a_clear_error(app: App) -> None:
    header = [app.signature("rpc.add", (1, 1))]
    with pytest.raises(NotImplementedError, match="rpc:// cannot"):
        chord(header, app.signature("rpc.add", (0,))).apply_async()
