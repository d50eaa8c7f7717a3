"""``celeriac beat``: help with examples, and settings errors that name the setting."""

from __future__ import annotations

from click.testing import CliRunner

from celeriac.cli import main


def test_beat_help_shows_examples() -> None:
    result = CliRunner().invoke(main, ["beat", "--help"])
    assert result.exit_code == 0
    assert "celeriac beat -A proj.tasks:app" in result.output
    assert "--lock-url" in result.output
    assert "--beat" in CliRunner().invoke(main, ["worker", "--help"]).output


def test_a_lock_url_that_cannot_elect_names_the_setting_and_the_fix() -> None:
    result = CliRunner().invoke(main, ["beat", "--lock-url", "amqp://127.0.0.1//"])
    assert result.exit_code == 1
    assert "beat_lock_url" in result.output and "redis://, sqlite:///" in result.output
    assert "Traceback" not in result.output
