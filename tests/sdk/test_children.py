"""A task's children (Celery's trail): what it sent while it ran, stored in its record; and a
canvas the worker could not run, refused before it is sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, chord, group
from celeriac.exceptions import IncompleteStream
from celeriac.result import GroupResult
from celeriac.worker import run_worker, stop_worker


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(
        "kids",
        broker=f"memory://{uuid.uuid4().hex}",
        backend=f"sqlite:///{tmp_path}/results.db",
        task_default_queue="kids",
    )

    @application.task(name="kids.add")
    def add(x: int, y: int) -> int:
        return x + y

    @application.task(name="kids.xsum")
    def xsum(xs: list[int]) -> int:
        return sum(xs)

    @application.task(name="kids.spawns")
    def spawns(how: str) -> str:
        if how == "chord":
            chord([add.s(1, 1), add.s(2, 2)], xsum.s()).apply_async()
        elif how == "not added":
            add.apply_async((1, 1), add_to_parent=False)
            group(add.s(1, 1)).apply_async(add_to_parent=False)
        else:
            add.delay(1, 1)
        return how

    @application.task(name="kids.untrailed", trail=False)
    def untrailed() -> None:
        add.delay(1, 1)

    worker = run_worker(application, concurrency=2)
    yield application
    stop_worker(worker)
    application.close()


def _run(app: App, name: str, *args: Any) -> Any:
    result = app.send_task(name, args)
    result.get(timeout=10)
    return result


def test_a_task_sent_inside_a_task_is_its_child(app: App) -> None:
    result = _run(app, "kids.spawns", "task")
    (child,) = result.children
    assert child.get(timeout=10) == 2
    assert [value for _, value in result.collect()] == ["task", 2]


def test_a_chords_header_is_the_child(app: App) -> None:
    (child,) = _run(app, "kids.spawns", "chord").children
    assert isinstance(child, GroupResult) and len(child.results) == 2


def test_add_to_parent_false_and_trail_false_record_nothing(app: App) -> None:
    assert _run(app, "kids.spawns", "not added").children == []
    assert _run(app, "kids.untrailed").children == []


def test_iterdeps_stops_at_a_result_not_ready_unless_intermediate(app: App) -> None:
    never = app.AsyncResult("never-sent")
    walk = never.iterdeps()
    assert next(walk) == (None, never)
    with pytest.raises(IncompleteStream):
        next(walk)
    assert [node.id for _, node in never.iterdeps(intermediate=True)] == ["never-sent"]


def test_a_canvas_in_a_chords_header_is_refused_before_sending(app: App) -> None:
    from celeriac import chain

    add, xsum = app.tasks["kids.add"], app.tasks["kids.xsum"]
    with pytest.raises(NotImplementedError, match="chain in a chord's header"):
        chord([chain(add.s(1, 1), add.s(2)), add.s(3, 3)], xsum.s()).apply_async()
