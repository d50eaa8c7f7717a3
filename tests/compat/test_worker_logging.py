"""A task logger's line in the worker's log, with each side's default formats: one app, run by
``celery worker`` (5.7) and by ``celeriac worker`` on the same Redis, logs from a task with
``get_task_logger(__name__)`` and prints from another (``worker_redirect_stdouts``); the lines
are equal but for the time."""

from __future__ import annotations

import re
import tempfile
import textwrap
import uuid
from pathlib import Path

from celeriac import App
from interop import celery_env
from tests.brokers import REDIS_URL, require
from tests.compat.harness import celeriac_worker, renamed
from tests.waiting import eventually

APP = textwrap.dedent(
    """
    import os

    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("logfmt", broker=os.environ["COMPAT_BROKER_URL"])
    logger = get_task_logger(__name__)


    @app.task
    def hello(who):
        logger.info("hello %s", who)


    @app.task
    def shout(what):
        print(f"shouted {what}")  # worker_redirect_stdouts: a log line at WARNING
    """
)
_TIME = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: ")


def _line(log: Path, needle: str, timeout: float = 30) -> str:
    # A log file the worker writes to: nothing to block on, so a bounded poll.
    def found() -> str | None:
        for line in log.read_text(errors="replace").splitlines():
            if needle in line:
                return _TIME.sub("[<time>: ", line)
        return None

    try:
        return eventually(found, timeout, repr(needle), interval=0.1)
    except AssertionError:
        tail = log.read_text()[-3000:]
        raise AssertionError(f"no {needle!r} in the worker's log:\n{tail}") from None


def test_a_task_loggers_line_is_celerys() -> None:
    require("redis")
    client = App("logfmt-client", broker=REDIS_URL, backend=None)
    lines = []
    try:
        for side in ("celery", "celeriac"):
            folder = Path(tempfile.mkdtemp(prefix=f"compat-logfmt-{side}-"))
            source = APP if side == "celery" else "\n".join(map(renamed, APP.splitlines()))
            (folder / "logfmt.py").write_text(source)
            queue = f"compat.logfmt.{side}.{uuid.uuid4().hex[:8]}"
            env = {"COMPAT_BROKER_URL": REDIS_URL}
            if side == "celery":
                with celery_env.CeleryWorker(
                    folder, "logfmt", broker_url=REDIS_URL, queues=[queue], env=env
                ) as worker:
                    assert worker.log_path is not None
                    lines.append(_lines(client, queue, worker.log_path))
            else:
                with celeriac_worker(folder, "logfmt", env, queue) as log:
                    lines.append(_lines(client, queue, log))
    finally:
        client.close()
    assert lines[0] == [
        "[<time>: INFO/MainProcess] logfmt.hello[the-id]: hello world",
        "[<time>: WARNING/MainProcess] shouted loud",  # print() in a task, redirected
    ]
    assert lines[1] == lines[0]


def _lines(client: App, queue: str, log: Path) -> list[str]:
    client.send_task("logfmt.hello", ("world",), queue=queue, task_id="the-id")
    client.send_task("logfmt.shout", ("loud",), queue=queue)
    return [_line(log, "hello world"), _line(log, "shouted loud")]
