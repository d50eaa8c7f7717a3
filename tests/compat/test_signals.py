"""Signals: every one of Celery's can be imported and connected; the publish signals carry
Celery's arguments and let receivers add headers; sender= filters; the ones Celeriac does not
send warn when connected to."""

from __future__ import annotations

import textwrap
import uuid
import warnings

import pytest

from celeriac import App, signals
from celeriac.worker import run_worker, stop_worker
from tests.compat.harness import script_both

PUBLISH = textwrap.dedent(
    """
    import json
    from celery import Celery
    from celery.signals import after_task_publish, before_task_publish

    app = Celery("sig", broker="memory://", backend=None)
    seen = []

    @before_task_publish.connect
    def before(sender=None, body=None, exchange=None, routing_key=None, headers=None,
               properties=None, **kwargs):
        headers["x-trace"] = "abc"
        seen.append(["before", sender, routing_key, headers["task"], list(body[0]),
                     body[1], sorted(k for k in kwargs if k != "signal")])

    @after_task_publish.connect(sender="sig.only")
    def after(sender=None, body=None, routing_key=None, headers=None, **kwargs):
        seen.append(["after", sender, routing_key, headers["x-trace"], list(body[0])])

    app.send_task("sig.add", (1, 2), queue="q1")
    app.send_task("sig.only", (3,), {"k": 4}, queue="q2")
    print(json.dumps(seen))
    """
)


def test_publish_signals_are_celerys() -> None:
    celery, celeriac = script_both(PUBLISH)
    assert celery[0][:5] == ["before", "sig.add", "q1", "sig.add", [1, 2]]
    assert celeriac == celery


def test_every_celery_signal_exists_and_unsent_ones_warn() -> None:
    with pytest.warns(signals.UnsentSignal, match="user_preload_options"):
        signals.user_preload_options.connect(lambda **_: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signals.task_success.connect(lambda **_: None)  # sent: no warning


def test_a_header_added_before_publish_reaches_the_worker() -> None:
    name = uuid.uuid4().hex[:8]
    app = App("sig", broker=f"memory://{name}", backend=f"memory://{name}")

    @app.task(bind=True)
    def trace(self: object) -> object:
        return self.request.headers.get("x-trace")  # type: ignore[attr-defined]

    def add_trace(headers: dict[str, object], **_: object) -> None:
        headers["x-trace"] = "t-1"

    signals.before_task_publish.connect(add_trace)
    try:
        worker = run_worker(app, concurrency=1)
        try:
            assert trace.delay().get(timeout=10) == "t-1"
        finally:
            stop_worker(worker)
    finally:
        signals.before_task_publish.disconnect(add_trace)
