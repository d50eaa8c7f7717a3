"""Calling options as Celery has them: retry / retry_policy when the broker cannot be reached,
and every apply_async option Celery documents accepted by send_task."""

from __future__ import annotations

import logging

import pytest

from celeriac import App
from celeriac.transports.errors import BrokerUnavailable

# A port nothing listens on: every connection is refused at once.
UNREACHABLE = "redis://127.0.0.1:9/0"


def test_retry_policy_sets_how_often_a_send_is_tried(caplog: pytest.LogCaptureFixture) -> None:
    app = App("calls", broker=UNREACHABLE, backend=None)
    policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0, "interval_max": 0}
    refused = pytest.raises((BrokerUnavailable, ConnectionError))
    with caplog.at_level(logging.WARNING, logger="celeriac"), refused:
        app.send_task("proj.tasks.add", (1, 2), retry_policy=policy)
    assert sum("again in" in r.getMessage() for r in caplog.records) == 2
    caplog.clear()
    refused = pytest.raises((BrokerUnavailable, ConnectionError))
    with caplog.at_level(logging.WARNING, logger="celeriac"), refused:
        app.send_task("proj.tasks.add", (1, 2), retry=False)
    assert not any("again in" in r.getMessage() for r in caplog.records)


def test_celerys_apply_async_options_are_accepted() -> None:
    app = App("calls", broker="memory://calls-options", backend=None)
    result = app.send_task(
        "proj.tasks.add",
        (1, 2),
        retry=True,
        retry_policy={"max_retries": 1},
        routing_key="celery",
        exchange="",
        headers={"x": 1},
        shadow="add(1, 2)",
        add_to_parent=True,
        ignore_result=True,
        serializer="json",
        compression="zlib",
        link=None,
        link_error=None,
    )
    assert result.id
