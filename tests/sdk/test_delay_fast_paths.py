"""The shortcuts of a plain ``delay()`` (issue 23) decide exactly as the long way: arguments
checked by count when only positional ones are given, no call options to check, no parent
request outside a task; anything else still goes through ``inspect.Signature.bind``."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest

from celeriac import App
from celeriac.protocol import decode_task
from celeriac.task import Context, _positional_range, _request


@pytest.fixture
def app() -> App:
    name = uuid.uuid4().hex[:8]
    return App("t", broker=f"memory://{name}", backend=f"memory://{name}")


def _sent(app: App) -> list[Any]:
    app.declare("celery")
    consumer = app.producer().consumer(["celery"])
    try:
        deliveries = consumer.fetch(100, timeout=0.1)
        consumer.ack(deliveries)
    finally:
        consumer.close()
    return [decode_task(d.message) for d in deliveries if d.message is not None]


def _binds(fn: Any, n: int) -> bool:
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    return True


def _a(x, y, z=1): ...  # type: ignore[no-untyped-def]
def _b(*args): ...  # type: ignore[no-untyped-def]
def _c(x, /, y=2, *rest, k=3): ...  # type: ignore[no-untyped-def]
def _d(x, *, k): ...  # type: ignore[no-untyped-def]
def _e(): ...  # type: ignore[no-untyped-def]
def _f(x, **kw): ...  # type: ignore[no-untyped-def]


@pytest.mark.parametrize("fn", [_a, _b, _c, _d, _e, _f])
def test_the_positional_range_agrees_with_bind(fn: Any) -> None:
    least, most = _positional_range(inspect.signature(fn))
    for n in range(6):
        # In range must bind; out of range falls back to bind(), so only soundness matters,
        # but the range is also exact for these shapes.
        assert (least <= n <= most) == _binds(fn, n), (fn, n)


def test_wrong_counts_and_keywords_are_still_refused_with_binds_words(app: App) -> None:
    @app.task(name="t.two")
    def two(x: int, y: int) -> int:
        return x + y

    @app.task(name="t.kw", bind=True)
    def kw(self: Any, x: int, *, k: int) -> int:
        return x + k

    with pytest.raises(TypeError, match=r"t\.two: missing a required argument: 'y'"):
        two.delay(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"t\.two: too many positional arguments"):
        two.delay(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"t\.kw: missing a required argument: 'k'"):
        kw.delay(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"t\.two: got an unexpected keyword argument 'z'"):
        two.delay(1, 2, z=3)  # type: ignore[call-arg]
    assert _sent(app) == []
    two.delay(1, 2)
    kw.delay(1, k=2)
    assert [m.headers.task for m in _sent(app)] == ["t.two", "t.kw"]


def test_outside_a_task_no_parent_is_written_and_inside_one_it_is(app: App) -> None:
    @app.task(name="t.noop")
    def noop() -> None:
        return None

    outside = noop.delay()
    token = _request.set(Context(id="p1", root_id="r1", task="t.noop"))
    try:
        inside = noop.delay()
    finally:
        _request.reset(token)
    first, second = _sent(app)
    assert (first.headers.parent_id, first.headers.root_id) == (None, first.id)
    assert (second.headers.parent_id, second.headers.root_id) == ("p1", "r1")
    assert first.id == outside.id and second.id == inside.id
