"""``celeriac -A proj <command>``: the app (and broker) given before the command, where
Celery's command line takes them; given after the command, they win."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from celeriac.cli import main
from celeriac.protocol.results import ResultRecord

APP = """
from celeriac import Celery
app = Celery("{name}", broker="memory://{name}", backend="sqlite:///{folder}/{name}.db")
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("first_app", "second_app"):
        (tmp_path / f"{name}.py").write_text(APP.format(name=name, folder=tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("first_app", "second_app"):
        sys.modules.pop(name, None)


def _store(folder: Path, name: str, value: str) -> None:
    from celeriac import App

    app = App(name, broker=f"memory://{name}", backend=f"sqlite:///{folder}/{name}.db")
    app.backend.store(ResultRecord("the-id", "SUCCESS", value))
    app.close()


def test_the_app_given_before_the_command_is_used(folder: Path) -> None:
    _store(folder, "first_app", "from the first")
    _store(folder, "second_app", "from the second")
    before = CliRunner().invoke(main, ["-A", "first_app", "result", "the-id"])
    assert before.exit_code == 0, before.output
    assert before.output.strip() == 'SUCCESS: "from the first"'
    after = CliRunner().invoke(main, ["-A", "first_app", "result", "the-id", "-A", "second_app"])
    assert after.output.strip() == 'SUCCESS: "from the second"'  # the command's own -A wins
