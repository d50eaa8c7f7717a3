"""Task classes as Celery has them: app.Task, task_cls= and base= base classes whose __call__
and before_start run around each run, Task.run, argument checking at send time (typing), and
retry()'s errors (MaxRetriesExceededError, and the error itself when called directly)."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import App, Task
from celeriac.exceptions import MaxRetriesExceededError, Retry
from celeriac.worker import run_worker, stop_worker
from tests.brokers import REDIS_URL, require
from tests.compat.harness import script_both

events: list[str] = []


class Recording(Task):  # type: ignore[type-arg]
    """A base class that records its hooks and wraps each run, as users' base classes do."""

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        events.append(f"before_start {self.name} {list(args)}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        events.append("enter")
        try:
            return self.run(*args, **kwargs)
        finally:
            events.append("exit")


@pytest.fixture
def app() -> Iterator[App]:
    name = uuid.uuid4().hex[:8]
    application = App("classes", broker=f"memory://{name}", backend=f"memory://{name}")
    yield application
    application.close()


def test_a_base_class_wraps_runs_by_a_worker(app: App) -> None:
    @app.task(base=Recording)
    def add(x: int, y: int) -> int:
        events.append("run")
        return x + y

    events.clear()
    worker = run_worker(app, concurrency=1)
    try:
        assert add.delay(2, 3).get(timeout=10) == 5
    finally:
        stop_worker(worker)
    assert events == [f"before_start {add.name} [2, 3]", "enter", "run", "exit"]
    assert isinstance(add, Recording)


def test_app_task_and_task_cls_set_every_tasks_class() -> None:
    by_arg = App("a", broker="memory://cls-a", backend=None, task_cls=Recording)
    by_path = App("b", broker="memory://cls-b", backend=None, task_cls=f"{__name__}:Recording")
    assigned = App("c", broker="memory://cls-c", backend=None)
    assigned.Task = Recording  # the older Flask pattern: celery.Task = ContextTask
    for application in (by_arg, by_path, assigned):
        made = application.task(lambda: None, name=f"t{uuid.uuid4().hex}")
        assert isinstance(made, Recording)
    with pytest.raises(TypeError, match="not a subclass"):
        App("d", broker="memory://cls-d", backend=None, task_cls=dict)  # type: ignore[arg-type]


def test_calling_a_task_goes_through_call_and_run(app: App) -> None:
    @app.task(base=Recording, bind=True)
    def who(self: Task, x: int) -> str:  # type: ignore[type-arg]
        return f"{self.name}:{x}"

    events.clear()
    assert who(1) == f"{who.name}:1"
    assert who.run(2) == f"{who.name}:2"
    assert events == ["enter", "exit"]


def test_arguments_are_checked_when_sent(app: App) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(typing=False)
    def loose(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="add"):
        add.delay(1, 2, 3)
    with pytest.raises(TypeError):
        add.apply_async((1,), {"z": 2})
    loose.delay(1, 2)  # not checked: sent as given


_CELERY_TYPING = """
import json
from celery import Celery
app = Celery("t", broker="memory://")
@app.task
def add(x, y):
    return x + y
@app.task(typing=False)
def loose(x):
    return x
seen = {}
try:
    add.delay(1, 2, 3)
    seen["add"] = "sent"
except TypeError:
    seen["add"] = "TypeError"
loose.delay(1, 2)
seen["loose"] = "sent"
print(json.dumps(seen))
"""


def test_argument_checking_is_celerys() -> None:
    from interop import celery_env

    python = celery_env.ensure(quiet=True)
    out = subprocess.run(
        [str(python), "-c", _CELERY_TYPING], capture_output=True, text=True, timeout=120
    )
    assert json.loads(out.stdout) == {"add": "TypeError", "loose": "sent"}, out.stderr


def test_retry_called_directly_raises_the_error(app: App) -> None:
    @app.task(bind=True)
    def flaky(self: Task) -> None:  # type: ignore[type-arg]
        raise self.retry(exc=ConnectionError("down"))

    @app.task(bind=True)
    def bare(self: Task) -> None:  # type: ignore[type-arg]
        raise self.retry()

    with pytest.raises(ConnectionError, match="down"):
        flaky()
    with pytest.raises(Retry):
        bare()


def test_used_up_retries_raise_max_retries_exceeded(app: App) -> None:
    @app.task(bind=True, max_retries=1, default_retry_delay=0.01)
    def always(self: Task) -> None:  # type: ignore[type-arg]
        raise self.retry()

    worker = run_worker(app, concurrency=1)
    try:
        result = always.delay()
        with pytest.raises(MaxRetriesExceededError, match="Can't retry"):
            result.get(timeout=10)
    finally:
        stop_worker(worker)


class RetryingBase(Task):  # type: ignore[type-arg]
    """Celery's documented pattern: task options as class attributes of a base class."""

    autoretry_for = (ConnectionError,)
    max_retries = 2
    default_retry_delay = 0.01
    queue = "from-the-base"


def test_a_base_class_sets_options_as_class_attributes(app: App) -> None:
    attempts: list[int] = []

    @app.task(base=RetryingBase, bind=True)
    def flaky(self: Task) -> int:  # type: ignore[type-arg]
        attempts.append(self.request.retries)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return len(attempts)

    @app.task(base=RetryingBase, queue="from-the-decorator")
    def routed() -> None: ...

    assert flaky.option("max_retries") == 2
    assert routed.send_defaults()["queue"] == "from-the-decorator"
    worker = run_worker(app, concurrency=1, queues=["from-the-base"])
    try:
        assert flaky.delay().get(timeout=10) == 3  # two automatic retries, then success
    finally:
        stop_worker(worker)
    assert attempts == [0, 1, 2]


def test_dont_autoretry_for_excludes_from_autoretry_for(app: App) -> None:
    attempts: list[str] = []

    @app.task(
        bind=True,
        autoretry_for=(OSError,),
        dont_autoretry_for=(FileNotFoundError,),
        max_retries=3,
        default_retry_delay=0.01,
    )
    def fails(self: Task, kind: str) -> None:  # type: ignore[type-arg]
        attempts.append(kind)
        raise FileNotFoundError(kind) if kind == "missing" else ConnectionError(kind)

    worker = run_worker(app, concurrency=1)
    try:
        with pytest.raises(FileNotFoundError):
            fails.delay("missing").get(timeout=10)
        with pytest.raises(ConnectionError):
            fails.delay("down").get(timeout=10)
    finally:
        stop_worker(worker)
    assert attempts.count("missing") == 1  # not retried
    assert attempts.count("down") == 4  # retried max_retries times


def test_the_worker_calls_the_outcome_hooks_and_a_raising_one_loses_nothing(app: App) -> None:
    calls: list[tuple[Any, ...]] = []

    class Hooked(Task):  # type: ignore[type-arg]
        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append(("on_success", retval, list(args)))
            raise RuntimeError("a broken hook")

        def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            calls.append(("on_failure", repr(exc), type(einfo.exception).__name__))
            raise RuntimeError("another broken hook")

        def after_return(self, *args: Any) -> None:
            calls.append(("after_return", args[0], args[-1]))

    @app.task(base=Hooked, name=f"hooked.{uuid.uuid4().hex}")
    def divide(x: int, y: int) -> float:
        return x / y

    worker = run_worker(app, concurrency=1)
    try:
        assert divide.delay(6, 3).get(timeout=10) == 2.0
        with pytest.raises(ZeroDivisionError):
            divide.delay(1, 0).get(timeout=10)
        assert divide.delay(8, 2).get(timeout=10) == 4.0  # the worker goes on
    finally:
        stop_worker(worker)
    assert calls[:4] == [
        ("on_success", 2.0, [6, 3]),
        ("after_return", "SUCCESS", None),
        ("on_failure", "ZeroDivisionError('division by zero')", "ZeroDivisionError"),
        ("after_return", "FAILURE", None),
    ]


class Multiply(Task):  # type: ignore[type-arg]
    """A class-based task: Celery's ``class ...(Task): def run(...)`` + ``register_task``."""

    def run(self, x: int, y: int) -> int:
        return x * y


class Named(Task):  # type: ignore[type-arg]
    name = "proj.named"

    def run(self) -> str:
        return self.name


def test_class_based_tasks_register_and_run(app: App) -> None:
    multiply = app.register_task(Multiply)
    named = app.register_task(Named(app))
    assert multiply.name == f"{__name__}.Multiply"
    assert named.name == "proj.named"
    assert multiply(3, 4) == 12
    worker = run_worker(app, concurrency=1)
    try:
        assert multiply.delay(6, 7).get(timeout=10) == 42
        assert app.send_task("proj.named").get(timeout=10) == "proj.named"
    finally:
        stop_worker(worker)
    with pytest.raises(TypeError, match="Multiply"):
        multiply.delay(1)  # arguments checked against run()


def test_signatures_check_arguments_when_sent(app: App) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match="add"):
        add.s(1).delay(2, 3)
    assert add.s(1).delay(2).id  # fits: sent


def test_replace_hands_the_run_and_its_id_to_a_signature(app: App) -> None:
    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    def add_one(x: int) -> int:
        return x + 1

    @app.task(bind=True)
    def outer(self: Task, x: int) -> None:  # type: ignore[type-arg]
        self.replace(double.s(x))

    worker = run_worker(app, concurrency=2)
    try:
        sent = outer.delay(5)
        assert sent.get(timeout=10) == 10  # the replacement's result, under outer's id
        assert outer.AsyncResult(sent.id).get(timeout=10) == 10
        assert (outer.s(3) | add_one.s()).delay().get(timeout=10) == 7  # the chain goes on
    finally:
        stop_worker(worker)


def test_track_started_is_not_stored_when_the_result_is_ignored(app: App) -> None:
    ran = threading.Event()

    @app.task(name=f"tracked.{uuid.uuid4().hex}", track_started=True, ignore_result=True)
    def quiet() -> None:
        ran.set()

    @app.task(name=f"tracked.{uuid.uuid4().hex}", track_started=True)
    def loud() -> str:
        return "done"

    worker = run_worker(app, concurrency=1)
    try:
        assert loud.delay().get(timeout=10) == "done"
        ignored = quiet.delay()
        assert ran.wait(10)
        assert loud.delay().get(timeout=10) == "done"  # the worker is past quiet's run
    finally:
        stop_worker(worker)
    assert ignored.state == "PENDING"  # neither STARTED nor SUCCESS was stored, as in Celery


EAGER_REQUEST = """
import json
from celery import Celery
app = Celery("eg", broker="memory://", backend="{backend}")

@app.task(bind=True)
def who(self, x, key=None):
    r = self.request
    return [r.is_eager, r.called_directly, sorted(r.delivery_info or {{}}), r.retries,
            list(r.args), r.kwargs, r.id == who.request.id]

print(json.dumps(who.apply((1,), {{"key": "v"}}).get()))
"""


def test_apply_fills_the_request_as_celery() -> None:
    require("redis")
    backend = REDIS_URL.rsplit("/", 1)[0] + "/4"
    celery, celeriac = script_both(EAGER_REQUEST.format(backend=backend))
    assert celery[:2] == [True, False]  # eager, and not called directly
    assert celeriac == celery


EAGER_HOOK = """
import json
from celery import Celery, Task
from celery.signals import task_postrun
app = Celery("eh", broker="memory://", backend="{backend}")
seen = []


@task_postrun.connect
def postrun(sender=None, state=None, **kwargs):
    seen.append(["postrun", state])


class Fragile(Task):
    def on_success(self, retval, task_id, args, kwargs):
        seen.append(["on_success", retval])
        raise RuntimeError("on_success broke")

    def after_return(self, *args):
        seen.append(["after_return"])


@app.task(base=Fragile)
def fine():
    return "ok"


try:
    fine.apply()
except RuntimeError as exc:
    seen.append(["raised", str(exc)])
print(json.dumps(seen))
"""


def test_a_raising_on_success_raises_from_apply_as_celery() -> None:
    require("redis")
    backend = REDIS_URL.rsplit("/", 1)[0] + "/4"
    celery, celeriac = script_both(EAGER_HOOK.format(backend=backend))
    assert celery[-1] == ["raised", "on_success broke"]
    assert celeriac == celery
