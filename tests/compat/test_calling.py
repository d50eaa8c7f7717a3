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


_RAW = """
import json, os, re, socket, sys, uuid
import redis
from celery import Celery
queue = "compat.raw." + uuid.uuid4().hex[:8]
app = Celery("raw", broker=sys.argv[1], backend=sys.argv[2])
app.send_task("proj.tasks.add", (1, 2), queue=queue)
app.send_task("proj.tasks.add", (1, 2), queue=queue)
client = redis.Redis.from_url(sys.argv[1])
sent = [json.loads(client.rpop(queue)) for _ in range(2)]
client.delete(queue)
origin = f"gen{os.getpid()}@{socket.gethostname()}"
oid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-3[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
print(json.dumps({
    "origin": [m["headers"]["origin"] == origin for m in sent],
    "reply_to is a uuid3": [bool(oid.match(m["properties"]["reply_to"])) for m in sent],
    "same reply_to in a thread": len({m["properties"]["reply_to"] for m in sent}) == 1,
}))
"""


def test_origin_and_reply_to_are_set_as_celery_sets_them() -> None:
    from tests.brokers import REDIS_URL, require
    from tests.compat.harness import script_both

    require("redis")
    backend = REDIS_URL.rsplit("/", 1)[0] + "/4"
    source = _RAW.replace("sys.argv[1]", repr(REDIS_URL)).replace("sys.argv[2]", repr(backend))
    celery, celeriac = script_both(source)
    assert celery == {
        "origin": [True, True],  # gen<pid>@<hostname>
        "reply_to is a uuid3": [True, True],  # Celery's thread_oid, with a Redis backend too
        "same reply_to in a thread": True,
    }
    assert celeriac == celery
