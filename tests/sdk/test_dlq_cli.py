"""``celeriac dlq``: dead letters listed with their reasons, replayed after a fix, purged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.cli import main
from celeriac.worker import run_worker, stop_worker
from tests.brokers import unique
from tests.transports.conftest import inject_raw, url_for
from tests.waiting import eventually


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    broker = url_for(str(request.param), tmp_path)
    queue = unique("dlq")
    application = App(
        "dlq", broker=broker, backend=f"sqlite:///{tmp_path}/results.db", task_default_queue=queue
    )
    yield application
    application.close()


def _cli(app: App, command: str, *args: str) -> str:
    queue = app.conf.task_default_queue
    result = CliRunner().invoke(main, ["dlq", command, queue, *args, "-b", app.conf.broker_url])
    assert result.exit_code == 0, result.output
    return result.output


def test_list_replay_purge(app: App, request: pytest.FixtureRequest) -> None:
    queue = app.conf.task_default_queue
    worker = run_worker(app, concurrency=1)
    try:
        sent = app.send_task("dlq.later", (20, 22))  # nobody has this task yet
        with pytest.raises(Exception, match="later"):
            sent.get(timeout=20)
        name = request.node.callspec.params["app"]
        inject_raw(name, app.conf.broker_url, queue, b"\x00 not an envelope")
        dlq = f"{queue}.dlq"
        eventually(lambda: app.producer().queue_length(dlq) >= 2, 20, "both dead letters")
    finally:
        stop_worker(worker)

    rows = [json.loads(line) for line in _cli(app, "list", "--json").splitlines()]
    by_id = {row["id"]: row for row in rows}
    assert sent.id in by_id and "unknown-task" in by_id[sent.id]["reason"]
    raw = [row for row in rows if row["id"].startswith("raw-")]
    assert len(raw) == 1 and raw[0]["reason"]
    # Listing leaves them in place; show prints one whole.
    shown = json.loads(_cli(app, "show", sent.id))
    assert shown["headers"]["task"] == "dlq.later" and "unknown-task" in shown["reason"]

    ran = threading.Event()

    @app.task(name="dlq.later")
    def later(x: int, y: int) -> int:
        ran.set()
        return x + y

    assert "replayed 1 message(s)" in _cli(app, "replay", "--all")
    worker = run_worker(app, concurrency=1)
    try:
        # The first run's FAILURE record is final, so the replay shows in what ran.
        assert ran.wait(20), "the replayed task did not run"
    finally:
        stop_worker(worker)
    left = [json.loads(line) for line in _cli(app, "list", "--json").splitlines()]
    assert [row["id"] for row in left] == [raw[0]["id"]]
    assert "purged 1 dead letter(s)" in _cli(app, "purge", "-f")
    assert _cli(app, "list", "--json").strip() == ""
