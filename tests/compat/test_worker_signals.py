"""The worker's lifecycle signals (``celeryd_init``, ``worker_init``, logging set-up,
``celeryd_after_setup``, ``worker_ready``, ``worker_shutting_down``, ``worker_shutdown``): one
app, run by ``celery worker`` (5.7) and by ``celeriac worker`` on the same Redis, writes each
signal it gets to a ledger; the two ledgers are equal."""

from __future__ import annotations

import json
import logging
import tempfile
import textwrap
import uuid
from pathlib import Path

from interop import celery_env
from tests.brokers import REDIS_URL, require
from tests.compat.harness import celeriac_worker, renamed
from tests.waiting import eventually

APP = textwrap.dedent(
    """
    import json
    import os

    from celery import Celery
    from celery import signals

    app = Celery("lifecycle", broker=os.environ["COMPAT_BROKER_URL"])
    NAMES = [
        "celeryd_init", "setup_logging", "after_setup_logger", "after_setup_task_logger",
        "worker_init", "celeryd_after_setup", "worker_ready", "worker_shutting_down",
        "worker_shutdown",
    ]


    def recorder(name):
        def record(sender=None, **kwargs):
            sent_by = "hostname" if isinstance(sender, str) else type(sender).__name__
            keys = sorted(k for k in kwargs if k != "signal")
            with open(os.environ["COMPAT_LEDGER"], "a") as ledger:
                ledger.write(json.dumps([name, sent_by == "hostname", keys]) + "\\n")
        return record


    for name in NAMES:
        if name != "setup_logging":  # connecting to it turns Celery's own logging set-up off
            getattr(signals, name).connect(recorder(name), weak=False)
    """
)


def _ledger_lines(path: Path, wanted: str, timeout: float = 60) -> list[list[object]]:
    # The worker appends to a file: nothing to block on, so a bounded poll.
    def read() -> list[list[object]]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    try:
        eventually(lambda: any(line[0] == wanted for line in read()), timeout, repr(wanted), 0.1)
    except AssertionError:
        pass  # the caller's assertion says what is missing
    return read()


def test_worker_lifecycle_signals_are_celerys() -> None:
    require("redis")
    observed = []
    for side in ("celery", "celeriac"):
        folder = Path(tempfile.mkdtemp(prefix=f"compat-lifecycle-{side}-"))
        source = APP if side == "celery" else "\n".join(map(renamed, APP.splitlines()))
        (folder / "lifecycle.py").write_text(source)
        ledger = folder / "ledger.txt"
        ledger.touch()
        queue = f"compat.lifecycle.{side}.{uuid.uuid4().hex[:8]}"
        env = {"COMPAT_BROKER_URL": REDIS_URL, "COMPAT_LEDGER": str(ledger)}
        if side == "celery":
            with celery_env.CeleryWorker(
                folder, "lifecycle", broker_url=REDIS_URL, queues=[queue], env=env
            ):
                _ledger_lines(ledger, "worker_ready")
        else:
            with celeriac_worker(folder, "lifecycle", env, queue):
                _ledger_lines(ledger, "worker_ready")
        observed.append(_ledger_lines(ledger, "worker_shutdown", timeout=30))
    celery, celeriac = observed
    assert [line[0] for line in celery][-3:] == [
        "worker_ready",
        "worker_shutting_down",
        "worker_shutdown",
    ]
    assert celeriac == celery


def test_a_setup_logging_receiver_takes_logging_over() -> None:
    from celeriac import signals
    from celeriac.cli.logs import setup_logging

    got: list[object] = []

    def configure(loglevel: object = None, **_: object) -> None:
        got.append(loglevel)

    signals.setup_logging.connect(configure)
    try:
        assert setup_logging("warning") is False  # Celeriac left logging alone
    finally:
        signals.setup_logging.disconnect(configure)
    assert got == [logging.WARNING]
