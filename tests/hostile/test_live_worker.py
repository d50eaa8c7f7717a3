"""The hostile corpus fed to a live worker on each transport: every message is dead-lettered with
its reason, none is lost or run, and the worker keeps working (SPEC.md §11)."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.transports import TransportError, open_transport
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import unique
from tests.hostile.corpus import raw_corpus, wire_corpus
from tests.transports.conftest import inject_raw, url_for

#: Transports whose raw storage a test can write bytes into (tests/transports/conftest.py).
HOSTILE_TRANSPORTS = ("sqlite", "redis", "amqp", "sqs", "kafka", "zookeeper")


@pytest.fixture(params=HOSTILE_TRANSPORTS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(name: str, tmp_path: Path) -> Iterator[App]:
    application = App(
        "hostile",
        broker=url_for(name, tmp_path),
        backend=f"sqlite:///{tmp_path}/r.db",
        task_default_queue=unique("hostile"),
    )
    ran: list[str] = []

    @application.task(name="hostile.ok")
    def ok(x: object) -> str:
        ran.append(str(x))
        return "ok"

    application.ran = ran  # type: ignore[attr-defined]
    yield application
    application.close()


@pytest.fixture
def worker(app: App) -> Iterator[Worker]:
    w = run_worker(app, concurrency=2)
    yield w
    stop_worker(w)


def test_every_hostile_message_is_dead_lettered_and_the_worker_lives(
    name: str, app: App, worker: Worker
) -> None:
    queue = app.conf.task_default_queue
    wires, raws = wire_corpus(), raw_corpus()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    transport = open_transport(app.conf.broker_url)
    try:
        app.declare(queue)
        refused = []
        for hostile in wires:
            assert hostile.wire is not None
            try:
                transport.publish(queue, hostile.wire)
            except TransportError as exc:
                # Over the broker's own size limit (SQS: 256 KiB): refused before it is sent,
                # with an error that names the limit. Nothing to dead-letter then.
                assert "limit" in str(exc), exc
                refused.append(hostile)
        wires = [h for h in wires if h not in refused]
        for hostile in raws:
            assert hostile.raw is not None
            inject_raw(name, app.conf.broker_url, queue, hostile.raw)
        expected = len(wires) + len(raws)
        reasons: list[str] = []
        ids: list[str | None] = []
        with transport.consumer([f"{queue}.dlq"], prefetch=100) as dlq:
            deadline = time.monotonic() + 60
            while len(reasons) < expected and time.monotonic() < deadline:
                got = dlq.fetch(expected - len(reasons), timeout=0.5)
                for d in got:
                    assert d.message is not None, d.error
                    reasons.append(str(d.message.headers.get("x-celeriac-reject-reason")))
                    ids.append(d.message.headers.get("id"))
                dlq.ack(got)
        # Nothing else arrives later: each message was dead-lettered exactly once.
    finally:
        transport.close()
    assert len(reasons) == expected, f"{len(reasons)} of {expected} dead-lettered: {reasons}"
    wanted = sorted(h.code for h in wires + raws)
    assert sorted(r.split(":", 1)[0] for r in reasons) == wanted, reasons
    assert all(":" in r and len(r) > len(r.split(":", 1)[0]) + 2 for r in reasons), reasons
    assert app.ran == []  # type: ignore[attr-defined]
    # The worker is alive and still runs tasks.
    assert app.send_task("hostile.ok", ("after",)).get(timeout=30) == "ok"
    assert worker.thread.is_alive()  # type: ignore[attr-defined]
    # The 200 MiB zlib bomb was refused while inflating, not held in memory.
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 150, f"peak memory grew by {grown_mib:.0f} MiB"


def test_limits_set_by_the_user_apply(tmp_path: Path) -> None:
    app = App(
        "limited",
        broker=f"sqlite:///{tmp_path}/b.db",
        backend=None,
        task_default_queue=unique("limited"),
        worker_max_message_bytes=2048,
        worker_max_depth=5,
        worker_max_arguments=3,
    )

    @app.task(name="limited.echo")
    def echo(*args: object) -> None:
        return None

    sent = [
        app.send_task("limited.echo", ("x" * 4096,)).id,
        app.send_task("limited.echo", ([[[[[[1]]]]]],)).id,
        app.send_task("limited.echo", (1, 2, 3, 4)).id,
    ]
    worker = run_worker(app, concurrency=1)
    try:
        transport = open_transport(app.conf.broker_url)
        reasons: dict[str, str] = {}
        with transport.consumer([f"{app.conf.task_default_queue}.dlq"], prefetch=10) as dlq:
            deadline = time.monotonic() + 30
            while len(reasons) < 3 and time.monotonic() < deadline:
                got = dlq.fetch(3, timeout=0.5)
                for d in got:
                    assert d.message is not None
                    reasons[d.message.headers["id"]] = d.message.headers["x-celeriac-reject-reason"]
                dlq.ack(got)
        transport.close()
    finally:
        stop_worker(worker)
        app.close()
    assert [reasons.get(i, "").split(":")[0] for i in sent] == ["limit-exceeded"] * 3, reasons
    assert "2048" in reasons[sent[0]] and "max_arguments" in reasons[sent[2]]
