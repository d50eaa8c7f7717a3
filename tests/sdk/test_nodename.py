"""Worker node names: ``-n`` expanded as Celery expands it, the name reaches
``request.hostname``, and two workers with one name are warned about."""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import pytest

from celeriac import App
from celeriac.worker import run_worker, stop_worker
from celeriac.worker.nodename import node_name
from tests.waiting import eventually


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, "celeriac@george.example.com"),
        ("w1@%h", "w1@george.example.com"),
        ("w1@%n", "w1@george"),
        ("%n@%d", "george@example.com"),
        ("w%i@%h", "w0@george.example.com"),
        ("w%I@%h", "w@george.example.com"),
        ("box", "celeriac@box"),  # no @: the host part, as in Celery
        ("w1@", "w1@george.example.com"),
    ],
)
def test_node_names_expand_as_celery_expands_them(spec: str | None, expected: str) -> None:
    assert node_name(spec, host="george.example.com") == expected


def test_an_unknown_abbreviation_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="%z"):
        node_name("w1@%z", host="h")


def test_the_worker_cli_refuses_a_bad_node_name() -> None:
    from click.testing import CliRunner

    from celeriac.cli import main

    result = CliRunner().invoke(main, ["worker", "-b", "memory://x", "-n", "w@%q"])
    assert result.exit_code != 0
    assert "%q" in result.output


def _app(tmp_path: Path) -> App:
    app = App(
        "names",
        broker=f"sqlite:///{tmp_path}/b.db",
        backend=f"sqlite:///{tmp_path}/r.db",
        task_default_queue=f"names.{uuid.uuid4().hex[:8]}",
    )

    @app.task(name="names.whoami", bind=True)
    def whoami(self: object) -> str:
        return str(self.request.hostname)  # type: ignore[attr-defined]

    return app


@pytest.mark.parametrize("pool", ["threads", "solo", "prefork"])
def test_request_hostname_is_the_workers_name(tmp_path: Path, pool: str) -> None:
    app = _app(tmp_path)
    w = run_worker(app, pool=pool, concurrency=1, hostname="named-one@test")
    try:
        assert app.send_task("names.whoami").get(timeout=30) == "named-one@test"
    finally:
        stop_worker(w)
        app.close()


def test_two_workers_with_one_name_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path)
    caplog.set_level(logging.WARNING, logger="celeriac.worker")
    first = run_worker(app, concurrency=1, hostname="twin@test")
    second = None
    try:
        second = run_worker(app, concurrency=1, hostname="twin@test")
        eventually(lambda: "already uses this node name" in caplog.text, 15, "the warning")
        assert "twin@test: another worker already uses this node name" in caplog.text
    finally:
        if second is not None:
            stop_worker(second)
        stop_worker(first)
        app.close()


def test_a_worker_alone_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path)
    caplog.set_level(logging.WARNING, logger="celeriac.worker")
    w = run_worker(app, concurrency=1, hostname=f"alone-{uuid.uuid4().hex[:6]}@test")
    try:
        eventually(
            lambda: not any(t.name == "celeriac-name-check" for t in threading.enumerate()),
            10,
            "the name check over",
        )
        assert "already uses this node name" not in caplog.text
    finally:
        stop_worker(w)
        app.close()
