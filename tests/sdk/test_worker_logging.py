"""The worker's logging set-up (``celeriac worker``/``beat``), as Celery's: the root logger's
handlers replaced (``worker_hijack_root_logger``), ``worker_log_format`` for the worker's lines,
``worker_task_log_format`` with the running task's name and id for task loggers' lines, and
the broker clients' chatter held back below WARNING unless ``-l debug``. Each case runs in a
process of its own, since it configures logging for the whole process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from celeriac import App
    from celeriac.cli.logs import setup_logging
    from celeriac.utils.log import get_task_logger

    app = App("fmt", broker="memory://fmt", backend=None)
    app.conf.update(
        worker_log_format="W %(levelname)s %(name)s %(message)s",
        worker_task_log_format="T %(task_name)s[%(task_id)s] %(message)s",
        worker_hijack_root_logger=sys.argv[2] == "hijack",
    )
    # A handler the user had on the root logger, writing to stdout.
    logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))
    setup_logging(sys.argv[1], app.conf)
    logger = get_task_logger("proj.tasks")

    @app.task(name="proj.tasks.hello")
    def hello():
        logger.info("hello from the task")

    hello.apply(task_id="id-1")
    logging.getLogger("celeriac.worker").info("worker line")
    logging.getLogger("pika.connection").info("pika chatter")
    logger.info("outside a task")
    """
)


def _run(level: str, hijack: str) -> tuple[list[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, level, hijack],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr.splitlines()


def test_worker_and_task_lines_have_their_formats() -> None:
    stdout, stderr = _run("info", "hijack")
    assert "T proj.tasks.hello[id-1] hello from the task" in stderr
    assert "T ???[???] outside a task" in stderr
    assert "W INFO celeriac.worker worker line" in stderr
    assert not any("pika chatter" in line for line in stderr)  # held back at -l info
    assert stdout == []  # the user's root handler was replaced


def test_debug_shows_the_broker_clients_and_no_hijack_keeps_the_users_handler() -> None:
    stdout, stderr = _run("debug", "keep")
    assert "pika chatter" in stdout  # through the user's own root handler, kept
    assert "worker line" in stdout
    assert "T proj.tasks.hello[id-1] hello from the task" in stderr  # the task logger's own


REDIRECT = textwrap.dedent(
    """
    import sys
    from celeriac import App
    from celeriac.cli.logs import redirected_stdouts, setup_logging

    app = App("fmt", broker="memory://fmt", backend=None)
    app.conf.update(worker_log_format="W %(levelname)s %(message)s")
    if sys.argv[1] not in ("default", "off"):
        app.conf.update(worker_redirect_stdouts_level=sys.argv[1])
    if sys.argv[1] == "off":
        app.conf.update(worker_redirect_stdouts=False, worker_redirect_stdouts_level="INFO")
    setup_logging("info", app.conf)
    with redirected_stdouts(app.conf):
        print("printed")
        print("to stderr", file=sys.stderr)
    print("after")
    """
)


def _redirect(level: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", REDIRECT, level], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_print_goes_to_the_log_at_the_redirect_level() -> None:
    out, err = _redirect("default")
    assert err.splitlines() == ["W WARNING printed", "W WARNING to stderr"]
    assert out == "after\n"  # put back after the block
    out, err = _redirect("INFO")
    assert err.splitlines() == ["W INFO printed", "W INFO to stderr"]
    out, err = _redirect("off")
    assert (out, err) == ("printed\nafter\n", "to stderr\n")


def test_a_bad_redirect_level_is_refused_by_name() -> None:
    import pytest

    from celeriac import App
    from celeriac.config import ConfigError

    app = App("fmt", broker="memory://fmt-level", backend=None)
    with pytest.raises(ConfigError, match="worker_redirect_stdouts_level: 'LOUD'"):
        app.conf.update(worker_redirect_stdouts_level="LOUD")
    app.conf.update(worker_redirect_stdouts_level=20)
    assert app.conf.worker_redirect_stdouts_level == "INFO"
