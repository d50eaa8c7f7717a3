"""Tasks run eagerly (``apply``): the same execution path a worker uses, with no broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from celeriac import App, Signature, chain
from celeriac.exceptions import RemoteError
from celeriac.protocol import ValidationError
from celeriac.protocol.results import EncodedException
from celeriac.result import exception_from


@pytest.fixture
def app() -> App:
    name = uuid.uuid4().hex[:8]
    return App("t", broker=f"memory://{name}", backend=f"memory://{name}")


def test_apply_stores_the_result(app: App) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.apply((2, 3))
    assert result.get(timeout=1) == 5 and result.successful()
    assert add(2, 3) == 5
    assert add.name == f"{__name__}.add"  # module path + function, as Celery names it


def test_async_task_runs_eagerly(app: App) -> None:
    @app.task
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert slow_double.apply((21,)).get(timeout=1) == 42


def test_failure_re_raises_the_same_type(app: App) -> None:
    @app.task
    def boom() -> None:
        raise KeyError("missing")

    result = boom.apply()
    assert result.failed()
    with pytest.raises(KeyError, match="missing"):
        result.get(timeout=1)
    assert "KeyError" in (result.traceback or "")
    assert isinstance(result.get(timeout=1, propagate=False), KeyError)


def test_unknown_exception_types_become_remote_errors() -> None:
    exc = exception_from(EncodedException("Evil", ("x",), "os"))
    assert isinstance(exc, RemoteError) and exc.exc_type == "Evil" and exc.exc_module == "os"
    assert isinstance(exception_from(EncodedException("ValueError", ("v",))), ValueError)


def test_bind_gives_the_request(app: App) -> None:
    @app.task(bind=True)
    def who(self: object) -> str:
        return str(app.tasks[f"{__name__}.who"].request.id)

    result = who.apply(task_id="fixed-id")
    assert result.get(timeout=1) == "fixed-id"


def test_unserializable_argument_fails_at_send_naming_it(app: App) -> None:
    @app.task
    def take(x: object, y: object) -> None: ...

    with pytest.raises(ValidationError) as info:
        take.delay(1, {1, 2})
    assert info.value.path == "args[1]"
    with pytest.raises(ValidationError) as info:
        take.apply_async((1,), {"y": object()})
    assert info.value.path == "kwargs.y"


def test_unknown_options_are_refused(app: App) -> None:
    with pytest.raises(TypeError, match="retires"):
        app.task(retires=3)(lambda: None)
    with pytest.raises(TypeError, match="countdwn"):
        app.send_task("x", countdwn=3)


def test_signatures_are_celery_shaped(app: App) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    sig = add.s(2)
    assert dict(sig) == {"task": f"{__name__}.add", "args": [2], "kwargs": {}, "options": {},
                         "subtask_type": None, "immutable": False}  # fmt: skip
    assert sig.clone((1,))["args"] == [1, 2]
    assert add.si(2, 3).clone((9,))["args"] == [2, 3]
    steps = chain(add.s(1, 1), add.s(2)) | add.s(3)
    assert [s.name for s in steps.tasks] == [f"{__name__}.add"] * 3
    assert Signature(dict(sig)).name == f"{__name__}.add"
