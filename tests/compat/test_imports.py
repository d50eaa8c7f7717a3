"""The import-rename rule: every Celery import line an application uses works with
``celery`` replaced by ``celeriac``, checked against real Celery 5.7 side by side."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import uuid

import pytest

import celeriac
from celeriac import App, Celery, shared_task
from celeriac import exceptions as exc

#: (module, name) pairs Celery applications import, as ``from <module> import <name>``.
IMPORTS = [
    ("celery", name)
    for name in (
        "Celery Task chain chord group signature subtask shared_task states current_app "
        "current_task maybe_signature uuid chunks xmap xstarmap"
    ).split()
] + [
    ("celery.app.task", "Task"),
    ("celery.app.task", "Context"),
    ("celery.app.base", "Celery"),
    ("celery.utils.log", "get_task_logger"),
    ("celery.utils.log", "get_logger"),
    ("celery.contrib.testing.worker", "start_worker"),
    ("celery.schedules", "crontab"),
    ("celery.schedules", "schedule"),
    ("celery.result", "AsyncResult"),
    ("celery.result", "GroupResult"),
    ("celery.result", "ResultSet"),
    ("celery.result", "allow_join_result"),
    ("celery.result", "denied_join_result"),
    ("celery.result", "result_from_tuple"),
    ("celery.schedules", "solar"),
    ("celery.schedules", "maybe_schedule"),
    ("celery.canvas", "Signature"),
    ("celery.canvas", "chain"),
    ("celery.canvas", "group"),
    ("celery.canvas", "chord"),
    ("celery.canvas", "signature"),
    ("celery.canvas", "maybe_signature"),
    ("celery.canvas", "chunks"),
    ("celery.canvas", "xmap"),
    ("celery.canvas", "xstarmap"),
    *[
        ("celery.states", name)
        for name in (
            "PENDING RECEIVED STARTED SUCCESS FAILURE REVOKED REJECTED RETRY IGNORED "
            "READY_STATES UNREADY_STATES EXCEPTION_STATES PROPAGATE_STATES ALL_STATES "
            "precedence state"
        ).split()
    ],
    *[
        ("celery.exceptions", name)
        for name in (
            "CeleryError TaskPredicate Retry Ignore Reject MaxRetriesExceededError TaskError "
            "NotRegistered AlreadyRegistered TimeoutError QueueNotFound ImproperlyConfigured "
            "SoftTimeLimitExceeded TimeLimitExceeded TaskRevokedError ChordError "
            "WorkerLostError Terminated WorkerShutdown WorkerTerminate SecurityError "
            "InvalidTaskError BackendError CPendingDeprecationWarning CDeprecationWarning "
            "AlwaysEagerIgnored FixupWarning NotConfigured IncompleteStream"
        ).split()
    ],
]

_CHECK = """
import importlib, json, sys
found = []
for module, name in json.loads(sys.argv[1]):
    try:
        found.append(hasattr(importlib.import_module(module), name))
    except ImportError:
        found.append(False)
print(json.dumps(found))
"""


def test_each_import_line_exists_in_celery_5_7() -> None:
    """The list is Celery's public API, not our own: real Celery has every entry."""
    from interop import celery_env

    python = celery_env.ensure(quiet=True)
    out = subprocess.run(
        [str(python), "-c", _CHECK, json.dumps(IMPORTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    missing = [pair for pair, ok in zip(IMPORTS, json.loads(out.stdout), strict=True) if not ok]
    assert missing == []


@pytest.mark.parametrize(("module", "name"), IMPORTS, ids=lambda v: str(v))
def test_the_renamed_import_works(module: str, name: str) -> None:
    renamed = "celeriac" + module[len("celery") :]
    assert hasattr(importlib.import_module(renamed), name), f"from {renamed} import {name}"


def test_celery_is_the_app_class_and_app_task_is_the_task_class() -> None:
    from celeriac.app.task import Task as AppTask

    assert Celery is App
    assert AppTask is celeriac.Task


def test_exceptions_keep_celerys_hierarchy() -> None:
    assert issubclass(exc.Retry, exc.TaskPredicate)
    assert issubclass(exc.Reject, exc.TaskPredicate)
    assert issubclass(exc.MaxRetriesExceededError, exc.TaskError)
    assert issubclass(exc.NotRegistered, KeyError)
    assert issubclass(exc.TimeoutError, TimeoutError)  # the built-in one catches it too
    assert exc.CeleryError is exc.CeleriacError


def test_a_task_logger_goes_through_the_task_logger() -> None:
    from celeriac.utils.log import get_task_logger, task_logger

    logger = get_task_logger(f"proj.tasks.{uuid.uuid4().hex}")
    assert logger.parent is task_logger
    assert isinstance(logger, logging.Logger)
    with pytest.raises(RuntimeError, match="reserved"):
        get_task_logger("celery.task")


def test_states_compare_by_precedence() -> None:
    from celeriac import states

    assert states.state(states.SUCCESS) > states.state(states.STARTED)
    assert states.state(states.PENDING) < states.state(states.RECEIVED)


def test_shared_task_reaches_apps_made_before_and_after_it() -> None:
    before = App("before", broker="memory://shared-before", backend=None)

    @shared_task
    def shared_double(x: int) -> int:
        return 2 * x

    after = App("after", broker="memory://shared-after", backend=None)
    name = f"{__name__}.shared_double"
    assert before.tasks[name](4) == 8
    assert after.tasks[name](4) == 8
    # The object stands for the current app's task.
    assert shared_double.app is after
    before.set_current()
    assert shared_double.app is before
    assert shared_double.name == name
    assert shared_double(5) == 10


def test_current_app_follows_set_current_and_is_callable() -> None:
    first = App("first", broker="memory://cur-first", backend=None)
    second = App("second", broker="memory://cur-second", backend=None)
    assert celeriac.current_app() is second
    first.set_current()
    assert celeriac.current_app() is first
    assert celeriac.current_app.main == "first"  # attribute access reaches the app


def test_task_names_are_module_path_and_function() -> None:
    app = App("proj", broker="memory://names", backend=None)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="custom.name")
    def other() -> None: ...

    @app.task(shared=False, lazy=False)  # Celery's registration switches are accepted
    def unshared() -> None: ...

    assert add.name == f"{__name__}.add"
    assert other.name == "custom.name"
    assert app.tasks[f"{__name__}.unshared"] is unshared
    # A function of the script being run takes the app's main name, as in Celery.
    assert app.gen_task_name("add", "__main__") == "proj.add"
    assert App(broker="memory://names2", backend=None).gen_task_name("f", "__main__") == (
        "__main__.f"
    )


def test_two_functions_under_one_name_is_an_error() -> None:
    app = App("clash", broker="memory://clash", backend=None)

    @app.task(name="proj.tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    def add2(x: int, y: int) -> int:
        return x - y

    with pytest.raises(exc.AlreadyRegistered, match=r"proj\.tasks\.add"):
        app.task(name="proj.tasks.add")(add2)
    assert app.tasks["proj.tasks.add"](3, 1) == 4  # the first stays


def test_signature_takes_call_options_as_keywords() -> None:
    sig = celeriac.signature("proj.tasks.add", (2, 2), {}, countdown=10, queue="q")
    assert sig["options"] == {"countdown": 10, "queue": "q"}
    assert celeriac.subtask is celeriac.signature
    assert celeriac.maybe_signature(None) is None
    assert celeriac.maybe_signature(dict(sig)) == sig


def test_current_task_is_the_running_task() -> None:
    name = uuid.uuid4().hex[:8]
    app = App("cur", broker=f"memory://{name}", backend=f"memory://{name}")

    @app.task
    def who() -> str:
        return f"{celeriac.current_task.name} {celeriac.current_task.request.id}"

    assert not celeriac.current_task
    assert who.apply(task_id="t-1").get(timeout=1) == f"{who.name} t-1"


def test_allow_join_result_lets_a_task_wait() -> None:
    from celeriac.result import allow_join_result, denied_join_result
    from celeriac.worker import run_worker, stop_worker

    name = uuid.uuid4().hex[:8]
    app = App("join", broker=f"memory://{name}", backend=f"memory://{name}")

    @app.task
    def inner() -> int:
        return 7

    @app.task
    def outer() -> int:
        with allow_join_result():
            return int(inner.delay().get(timeout=10)) + 1

    worker = run_worker(app, concurrency=2)
    try:
        assert outer.delay().get(timeout=10) == 8
    finally:
        stop_worker(worker)
    with denied_join_result(), pytest.raises(RuntimeError, match="Never call"):
        inner.delay().get(timeout=1)


def test_solar_is_refused_with_a_clear_error() -> None:
    from celeriac.schedules import solar

    with pytest.raises(NotImplementedError, match="no solar schedules"):
        solar("sunrise", 52.5, 13.4)


def test_app_tasks_is_celerys_registry() -> None:
    app = App("registry", broker="memory://registry", backend=None)

    @app.task
    def job() -> None: ...

    with pytest.raises(exc.NotRegistered):
        app.tasks["proj.tasks.missing"]
    assert job.name in app.tasks.regular()
    app.tasks.unregister(job)
    assert job.name not in app.tasks
    app.tasks.register(job)
    assert app.tasks[job.name] is job
