"""The dashboard's retry sends what the worker stored (the extended result record), never what an
event says: events are unsigned, so a forged ``task-received`` must not choose the arguments a
dashboard user's click sends. A real worker on Redis (a database of the test's own), a real
dashboard consuming its events, and forged events published on the same broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from celeriac import App
from celeriac.dashboard import Dashboard, create_app
from celeriac.events import event, send_event
from celeriac.worker import run_worker, stop_worker
from tests.brokers import redis_db
from tests.waiting import eventually

#: Redis database of this file's own, so its events and queues meet no other run's.
DB = 13


def _url() -> str:
    return redis_db(DB)


@pytest.fixture
def app() -> Iterator[App]:
    queue = f"retry.{uuid.uuid4().hex[:8]}"
    application = App(
        "retry_record",
        broker=_url(),
        backend=_url(),
        task_default_queue=queue,
        result_extended=True,
        worker_send_task_events=True,
    )

    @application.task(name="retry_record.fails")
    def fails(x: int, label: str = "") -> None:
        raise ValueError(f"fails with {x} {label}")

    @application.task(name="retry_record.echo")
    def echo(x: int) -> int:
        return x

    yield application
    application.close()


@pytest.fixture
def running(app: App) -> Iterator[tuple[Dashboard, Any]]:
    board = Dashboard(app, reply_timeout=0.5)
    board.start()
    worker = run_worker(app, concurrency=1, hostname=f"retry-{uuid.uuid4().hex[:6]}@test")
    try:
        eventually(lambda: board.connected, 10, "the dashboard's event stream")
        yield board, worker
    finally:
        board.stop()
        stop_worker(worker)


def _failed(app: App, board: Dashboard, *args: Any, **kwargs: Any) -> str:
    result = app.tasks["retry_record.fails"].apply_async(args, kwargs)
    eventually(lambda: result.state == "FAILURE", 20, "the task's stored FAILURE")
    found = eventually(
        lambda: (t := board.state.task_fields(result.id)) and t.state == "FAILURE" and t, 20
    )
    assert found.args == repr(args)
    return result.id


def _forge(app: App, type_: str, task_id: str, **fields: Any) -> None:
    send_event(app, event(type_, "forger@evil", uuid=task_id, **fields))


def _retry(board: Dashboard, task_id: str) -> Any:
    return TestClient(create_app(board, None)).post(f"/api/tasks/{task_id}/retry", json={})


def test_retry_sends_the_stored_call(app: App, running: tuple[Dashboard, Any]) -> None:
    board, _ = running
    task_id = _failed(app, board, 7, label="kept")
    answer = _retry(board, task_id)
    assert answer.status_code == 200, answer.text
    again = answer.json()["result"]["task_id"]
    eventually(lambda: app.AsyncResult(again).state == "FAILURE", 20, "the retried run")
    stored = app.backend.get(again).extended
    assert stored["args"] == [7] and stored["kwargs"] == {"label": "kept"}
    assert stored["queue"] == app.conf.task_default_queue


def test_a_forged_event_with_other_arguments_is_refused(
    app: App, running: tuple[Dashboard, Any]
) -> None:
    board, _ = running
    task_id = _failed(app, board, 1)
    # A forger re-announces the same task with the arguments it wants a click to send.
    _forge(app, "task-received", task_id, name="retry_record.fails", args="(666,)", kwargs="{}")
    eventually(lambda: board.state.task_fields(task_id).args == "(666,)", 10, "the forged args")
    _forge(app, "task-failed", task_id, exception="ValueError()")
    eventually(lambda: board.state.task_fields(task_id).state == "FAILURE", 10, "forged failure")
    answer = _retry(board, task_id)
    assert answer.status_code == 409 and "arguments differ" in answer.json()["error"]
    assert board.state.task_fields(task_id).retried_as is None  # type: ignore[union-attr]


def test_a_forged_task_name_is_refused(app: App, running: tuple[Dashboard, Any]) -> None:
    board, _ = running
    task_id = _failed(app, board, 2)
    _forge(app, "task-received", task_id, name="proj.delete_everything", args="(2,)")
    _forge(app, "task-failed", task_id, exception="ValueError()")
    eventually(
        lambda: board.state.task_fields(task_id).name == "proj.delete_everything", 10, "forgery"
    )
    eventually(lambda: board.state.task_fields(task_id).state == "FAILURE", 10, "forged failure")
    answer = _retry(board, task_id)
    assert answer.status_code == 409 and "'proj.delete_everything'" in answer.json()["error"]


def test_a_task_only_events_speak_of_is_refused(app: App, running: tuple[Dashboard, Any]) -> None:
    board, _ = running
    invented = str(uuid.uuid4())
    _forge(app, "task-received", invented, name="retry_record.fails", args="(3,)", kwargs="{}")
    _forge(app, "task-failed", invented, exception="ValueError()")
    eventually(
        lambda: (t := board.state.task_fields(invented)) and t.state == "FAILURE", 10, "forgery"
    )
    answer = _retry(board, invented)
    assert answer.status_code == 409 and "result_extended" in answer.json()["error"]
    queued = app.producer().queue_length(app.conf.task_default_queue)
    assert queued == 0  # nothing was sent


def test_a_task_that_succeeded_is_not_retried_on_a_forged_failure(
    app: App, running: tuple[Dashboard, Any]
) -> None:
    board, _ = running
    result = app.tasks["retry_record.echo"].delay(4)
    assert result.get(timeout=20) == 4
    # A dashboard that saw the real events keeps SUCCESS (Celery's precedence), so the forger's
    # target is one that did not see them: started once they were all sent (the worker sends
    # events after the result is stored), it sees only forgeries.
    eventually(
        lambda: getattr(board.state.task_fields(result.id), "state", None) == "SUCCESS",
        10,
        "the task's real events",
    )
    late = Dashboard(app, reply_timeout=0.5)
    late.start()
    try:
        eventually(lambda: late.connected, 10, "the late dashboard's event stream")
        _forge(app, "task-received", result.id, name="retry_record.echo", args="(4,)")
        _forge(app, "task-failed", result.id, exception="ValueError()")
        try:
            eventually(
                lambda: getattr(late.state.task_fields(result.id), "state", None) == "FAILURE"
            )
        except AssertionError:
            raise AssertionError(f"forgery: {late.state.task_fields(result.id)!r}") from None
        answer = _retry(late, result.id)
    finally:
        late.stop()
    assert answer.status_code == 409 and "backend says SUCCESS" in answer.json()["error"]


def test_without_a_backend_retry_is_refused(app: App) -> None:
    board = Dashboard(App("no_backend", broker=_url(), backend=""), reply_timeout=0.5)
    board.state.apply({"type": "task-received", "hostname": "w", "uuid": "t-1", "name": "n"})
    board.state.apply({"type": "task-failed", "hostname": "w", "uuid": "t-1"})
    answer = _retry(board, "t-1")
    assert answer.status_code == 409 and "--backend" in answer.json()["error"]
