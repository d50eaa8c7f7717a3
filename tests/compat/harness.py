"""The compatibility harness: each example app is kept twice, a Celery copy and a Celeriac copy
that differ only in import lines; both are run by real workers (Celery 5.7's and Celeriac's) on
the same broker, and one driver script, run against each copy, reports what it observed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from interop import celery_env
from tests.waiting import eventually

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
DRIVERS = HERE / "drivers"
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
_IMPORT = re.compile(r"^\s*(from\s+celery(\.|\s)|import\s+celery(\.|\s|$))")


def copies(layout: str, root: Path = APPS) -> tuple[Path, Path]:
    """The Celery copy and the Celeriac copy of an example app."""
    return root / layout / "celery", root / layout / "celeriac"


def renamed(line: str) -> str:
    """An import line of the Celery copy, as the Celeriac copy must have it."""
    if not _IMPORT.match(line):
        return line
    return re.sub(r"\bcelery\b", "celeriac", line)


def differences(layout: str, root: Path = APPS) -> list[str]:
    """Every way the Celeriac copy differs from the Celery copy with its imports renamed
    (empty when the import-rename rule holds)."""
    theirs, ours = copies(layout, root)
    problems: list[str] = []
    files = {p.relative_to(theirs) for p in theirs.rglob("*.py")}
    our_files = {p.relative_to(ours) for p in ours.rglob("*.py")}
    for missing in sorted(files ^ our_files):
        problems.append(f"{missing}: in one copy only")
    for rel in sorted(files & our_files):
        expected = [renamed(line) for line in (theirs / rel).read_text().splitlines()]
        actual = (ours / rel).read_text().splitlines()
        if expected != actual:
            problems.append(f"{rel}: differs in more than its import lines")
    return problems


def with_django(app_dir: Path) -> Path:
    """A temporary copy of ``app_dir`` that also holds Django (and what it needs) from our
    venv, as links: Celery's venv has no Django, and its worker's PYTHONPATH is the app's
    folder alone. The same Django then runs both copies."""
    import asgiref
    import django
    import sqlparse

    folder = Path(tempfile.mkdtemp(prefix="celeriac-compat-django-"))
    shutil.copytree(app_dir, folder, dirs_exist_ok=True)
    for module in (django, asgiref, sqlparse):
        source = Path(str(module.__file__)).parent
        (folder / source.name).symlink_to(source)
    return folder


@contextlib.contextmanager
def celeriac_worker(app_dir: Path, spec: str, env: Mapping[str, str], queue: str) -> Iterator[Path]:
    """A real ``celeriac -A <spec> worker`` on ``app_dir`` consuming ``queue`` (comma-separated
    names), stopped warm at the end."""
    # -A before the command, where Celery takes it (celery -A proj worker).
    with _process(app_dir, [CELERIAC, "-A", spec, "worker", "-Q", queue, "-c", "2"], env) as log:
        yield log


@contextlib.contextmanager
def _process(app_dir: Path, command: list[str], env: Mapping[str, str]) -> Iterator[Path]:
    """A command run on ``app_dir`` with its output in a log file; SIGTERM (then SIGKILL) at
    the end."""
    log = Path(tempfile.mkstemp(prefix="compat-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "-l", "info"],
            cwd=app_dir,
            env={**os.environ, **env, "PYTHONPATH": str(app_dir)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield log
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def drive(python: str, app_dir: Path, driver: str, env: Mapping[str, str], log: Path) -> Any:
    """Run a driver script against one copy; its observations (JSON on stdout)."""
    done = subprocess.run(
        [python, str(DRIVERS / driver)],
        cwd=app_dir,
        env={**os.environ, **env, "PYTHONPATH": str(app_dir)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"driver {driver} failed on {app_dir}:\n{done.stderr[-3000:]}\n"
            f"worker log:\n{log.read_text(errors='replace')[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_both(
    layout: str,
    spec: str,
    driver: str,
    broker: str,
    backend: str,
    django: bool = False,
    celeriac_urls: tuple[str, str] | None = None,
) -> tuple[Any, Any]:
    """The driver's observations with Celery 5.7 (client and worker) and with Celeriac, both
    on ``broker``/``backend``, or Celeriac on ``celeriac_urls`` (a broker Celery cannot use,
    SQLite, compared with Celery's run on ``broker``)."""
    theirs, ours = copies(layout)
    observed = []
    for side, app_dir in (("celery", theirs), ("celeriac", ours)):
        queue = f"compat.{layout}.{side}.{uuid.uuid4().hex[:8]}"
        urls = celeriac_urls if side == "celeriac" and celeriac_urls else (broker, backend)
        env = {"COMPAT_BROKER_URL": urls[0], "COMPAT_BACKEND_URL": urls[1], "COMPAT_QUEUE": queue}
        # A file the apps' workers may write what they saw to, for the driver to read.
        env["COMPAT_LEDGER"] = tempfile.mkstemp(prefix=f"compat-{layout}-{side}-")[1]
        if side == "celery":
            if django:
                app_dir = with_django(app_dir)
            with celery_env.CeleryWorker(
                app_dir, spec, broker_url=broker, backend_url=backend, queues=[queue], env=env
            ) as worker:
                assert worker.log_path is not None
                python = str(celery_env.celery_python())
                observed.append(drive(python, app_dir, driver, env, worker.log_path))
        else:
            with celeriac_worker(app_dir, spec, env, queue) as log:
                observed.append(drive(sys.executable, app_dir, driver, env, log))
    return observed[0], observed[1]


def run_crossed(
    layout: str, spec: str, driver: str, broker: str, backend: str, **env: str
) -> tuple[Any, Any]:
    """The driver's observations with a Celery 5.7 client and a Celeriac worker, and with a
    Celeriac client and a Celery 5.7 worker, both on ``broker``/``backend`` (each client runs
    its own copy of the app; the task names are the same)."""
    theirs, ours = copies(layout)
    observed = []
    for client in ("celery", "celeriac"):
        queue = f"compat.{layout}.{client}-client.{uuid.uuid4().hex[:8]}"
        run_env = {
            "COMPAT_BROKER_URL": broker,
            "COMPAT_BACKEND_URL": backend,
            "COMPAT_QUEUE": queue,
            "COMPAT_LEDGER": tempfile.mkstemp(prefix=f"compat-{layout}-{client}-client-")[1],
            **env,
        }
        if client == "celery":
            with celeriac_worker(ours, spec, run_env, queue) as log:
                python = str(celery_env.celery_python())
                observed.append(drive(python, theirs, driver, run_env, log))
        else:
            with celery_env.CeleryWorker(
                theirs, spec, broker_url=broker, backend_url=backend, queues=[queue], env=run_env
            ) as worker:
                assert worker.log_path is not None
                observed.append(drive(sys.executable, ours, driver, run_env, worker.log_path))
    return observed[0], observed[1]


_FIND = {
    "celery": "from celery.app.utils import find_app",
    "celeriac": "from celeriac.cli.loading import find_app",
}


def found_app(side: str, app_dir: Path, spec: str) -> str:
    """The ``main`` name of the app that ``-A <spec>`` finds, by each side's own finder."""
    python = str(celery_env.celery_python()) if side == "celery" else sys.executable
    done = subprocess.run(
        [python, "-c", f"{_FIND[side]}\nimport sys\nprint(find_app(sys.argv[1]).main)", spec],
        cwd=app_dir,
        env={**os.environ, "PYTHONPATH": str(app_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        return f"error: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
    return done.stdout.strip()


def script_both(source: str, timeout: float = 120) -> tuple[Any, Any]:
    """Run a script written for Celery with Celery 5.7, and its import-renamed copy with
    Celeriac; each prints one JSON line of observations."""
    results = []
    for python, text in (
        (str(celery_env.ensure(quiet=True)), source),
        (sys.executable, "\n".join(renamed(line) for line in source.splitlines())),
    ):
        done = subprocess.run(
            [python, "-c", text], capture_output=True, text=True, timeout=timeout, cwd=HERE
        )
        if done.returncode != 0:
            raise AssertionError(f"{python} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results[0], results[1]


def _wait_for_lines(path: Path, wanted: int, timeout: float = 45) -> list[str]:
    # A ledger file the worker appends to: nothing to block on, so a bounded poll.
    def read() -> list[str]:
        return sorted(set(path.read_text().splitlines())) if path.exists() else []

    def enough() -> list[str] | None:
        lines = read()
        return lines if len(lines) >= wanted else None

    try:
        return eventually(enough, timeout, f"{wanted} ledger lines", interval=0.1)
    except AssertionError:
        return read()  # the caller's assertion says what is missing


def beat_both(layout: str, spec: str, broker: str, backend: str, entries: int) -> tuple[Any, Any]:
    """Run a beat and a worker of each side for a few ticks; the distinct ``task what queue``
    lines the tasks wrote to a ledger (the queue with the run's prefix replaced by ``Q``)."""
    theirs, ours = copies(layout)
    observed = []
    for side, app_dir in (("celery", theirs), ("celeriac", ours)):
        work = Path(tempfile.mkdtemp(prefix=f"compat-beat-{side}-"))
        queue = f"compat.{layout}.{side}.{uuid.uuid4().hex[:8]}"
        queues = ",".join(f"{queue}{suffix}" for suffix in ("", ".maint", ".entry", ".reports"))
        env = {
            "COMPAT_BROKER_URL": broker,
            "COMPAT_BACKEND_URL": backend,
            "COMPAT_QUEUE": queue,
            "COMPAT_LEDGER": str(work / "ledger.txt"),
            "CELERIAC_BEAT_LOCK_KEY": f"compat-beat-{queue}",
        }
        if side == "celery":
            python = str(celery_env.ensure(quiet=True))
            beat = [python, "-m", "celery", "-A", spec, "beat", "-s", str(work / "schedule")]
            with (
                celery_env.CeleryWorker(
                    app_dir,
                    spec,
                    broker_url=broker,
                    backend_url=backend,
                    queues=queues.split(","),
                    env=env,
                ),
                _process(app_dir, beat, env) as log,
            ):
                lines = _wait_for_lines(work / "ledger.txt", entries)
        else:
            with (
                celeriac_worker(app_dir, spec, env, queues),
                _process(app_dir, [CELERIAC, "beat", "-A", spec], env) as log,
            ):
                lines = _wait_for_lines(work / "ledger.txt", entries)
        if len(lines) < entries:
            raise AssertionError(f"{side}: {lines}\nbeat log:\n{log.read_text()[-3000:]}")
        observed.append([line.replace(queue, "Q") for line in lines])
    return observed[0], observed[1]
