"""Real Celery, kept apart: a cached virtualenv with Celery 5.7.0 and helpers to drive it.

Celery is the reference implementation Celeriac must stay byte-compatible with, so the interop
tests run the real thing. It must never be installed into the project's own venv (it would hide
import mistakes and drag its dependencies into ours), so it lives in a separate, cached venv:

    ~/.cache/celeriac/venvs/celery-5.7.0      (override: CELERIAC_CELERY_VENV)

with celery==5.7.0, kombu==5.7.0 and the clients for Redis (redis-py), AMQP (py-amqp, Celery's
default), SQS (boto3, pycurl, urllib3: Kombu's ``sqs`` extra), msgpack and PyYAML.

Command line::

    python interop/celery_env.py ensure     # create or reuse the venv, print its python
    python interop/celery_env.py python     # print the venv's python (fails if not ensured)
    python interop/celery_env.py versions   # print the Celery/Kombu versions inside the venv

From Python (tests import this file by path or as ``interop.celery_env``)::

    from interop import celery_env
    py = celery_env.ensure()                        # Path of the venv's python, idempotent
    celery_env.run_script("script.py", "arg", env={...})
    with celery_env.CeleryWorker(app_dir, "interop_app", broker_url=..., backend_url=...,
                                 queues=["q1"]) as worker:
        ...                                         # the worker is consuming here
    # leaving the block stops it (warm shutdown, then kill after a bounded wait)

``ensure()`` is idempotent and cheap when the venv is already there: it checks a stamp file
holding the exact requirement set, under a file lock so parallel test processes do not race.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CELERY_VERSION",
    "E2E_DIR",
    "KOMBU_VERSION",
    "REQUIREMENTS",
    "CeleryEnvError",
    "CeleryWorker",
    "celery_python",
    "e2e_worker",
    "ensure",
    "run_script",
    "venv_dir",
]

CELERY_VERSION = "5.7.0"
KOMBU_VERSION = "5.7.0"

#: What goes into the venv. Kombu's ``sqs`` extra brings boto3, pycurl and urllib3; pycurl has
#: manylinux wheels, and when it must build from source it needs libcurl's headers (see
#: ``_apt_install_libcurl``).
REQUIREMENTS: tuple[str, ...] = (
    f"celery[redis,sqs,msgpack,yaml]=={CELERY_VERSION}",
    f"kombu[redis,sqs,msgpack,yaml]=={KOMBU_VERSION}",
    "amqp>=5.4.2",
)

_STAMP_NAME = "celeriac-stamp.txt"
_INSTALL_TIMEOUT = 900.0


class CeleryEnvError(RuntimeError):
    """The Celery venv could not be made or used; the message says what to do."""


def venv_dir() -> Path:
    """Where the Celery venv lives (``CELERIAC_CELERY_VENV`` overrides the default)."""
    override = os.environ.get("CELERIAC_CELERY_VENV")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "celeriac" / "venvs" / f"celery-{CELERY_VERSION}"


def celery_python() -> Path:
    """The venv's python (it may not exist yet: call :func:`ensure` first)."""
    return venv_dir() / "bin" / "python"


def _stamp_text() -> str:
    # The interpreter's version, not its path: the venv may be checked from inside itself.
    lines = [f"python={sys.version_info[0]}.{sys.version_info[1]}", *REQUIREMENTS]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return "\n".join([digest, *lines]) + "\n"


def _base_python() -> str:
    """A plain interpreter to build the venv from (not the project's venv python)."""
    override = os.environ.get("CELERIAC_CELERY_BASE_PYTHON")
    if override:
        return override
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("python3")
    if found is None:
        raise CeleryEnvError("no python3 found to build the Celery venv from")
    return found


def _is_ready(root: Path) -> bool:
    stamp = root / _STAMP_NAME
    return (
        (root / "bin" / "python").exists() and stamp.exists() and stamp.read_text() == _stamp_text()
    )


def _log(msg: str) -> None:
    print(f"[celery_env] {msg}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], *, timeout: float = _INSTALL_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)


def _apt_install_libcurl() -> bool:
    """Install libcurl's headers so pycurl can build from source. True if it worked."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    _log("pycurl needs libcurl headers: apt-get install libcurl4-openssl-dev libssl-dev")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "libcurl4-openssl-dev", "libssl-dev"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            _log(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
            return False
    return True


def _pip_install(python: Path) -> None:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS]
    proc = _run(cmd)
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    if "pycurl" in output and _apt_install_libcurl():
        proc = _run(cmd)
        if proc.returncode == 0:
            return
        output = proc.stdout + proc.stderr
    raise CeleryEnvError(
        f"pip install into {python} failed (exit {proc.returncode}):\n{output[-4000:]}"
    )


@contextlib.contextmanager
def _locked(root: Path):
    root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = root.parent / f".{root.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure(*, quiet: bool = False) -> Path:
    """Create the Celery venv if it is missing or stale, and return its python.

    Idempotent: a venv whose stamp matches :data:`REQUIREMENTS` is reused as it is. A stale or
    half-built venv is removed and built again.
    """
    root = venv_dir()
    if _is_ready(root):
        return celery_python()
    with _locked(root):
        if _is_ready(root):
            return celery_python()
        started = time.monotonic()
        if not quiet:
            _log(f"building {root} (celery=={CELERY_VERSION}, kombu=={KOMBU_VERSION})")
        if root.exists():
            shutil.rmtree(root)
        proc = _run([_base_python(), "-m", "venv", str(root)], timeout=300)
        if proc.returncode != 0:
            raise CeleryEnvError(f"python -m venv {root} failed:\n{proc.stderr[-2000:]}")
        python = celery_python()
        _pip_install(python)
        check = _run([str(python), "-c", _VERSION_CHECK], timeout=120)
        if check.returncode != 0 or check.stdout.split() != [CELERY_VERSION, KOMBU_VERSION]:
            raise CeleryEnvError(
                f"the venv at {root} does not import celery/kombu {CELERY_VERSION}/"
                f"{KOMBU_VERSION}: {check.stdout!r} {check.stderr[-2000:]}"
            )
        (root / _STAMP_NAME).write_text(_stamp_text())
        if not quiet:
            _log(f"ready in {time.monotonic() - started:.0f}s: {python}")
    return celery_python()


_VERSION_CHECK = (
    "import celery, kombu, amqp, redis, boto3, pycurl, msgpack, yaml; "
    "print(celery.__version__, kombu.__version__)"
)


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The environment for a Celery subprocess: ours minus anything pointing at our venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "__PYVENV_LAUNCHER__"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def run_script(
    script: str | os.PathLike[str],
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 600.0,
    check: bool = True,
    capture: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``script`` with the Celery venv's python (ensuring the venv first).

    Returns the completed process; with ``check`` a non-zero exit raises ``CeleryEnvError``
    carrying the tail of its output.
    """
    python = ensure(quiet=True)
    proc = subprocess.run(
        [str(python), os.fspath(script), *args],
        env=_clean_env(env),
        cwd=cwd,
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = ((proc.stdout or "") + (proc.stderr or ""))[-4000:]
        raise CeleryEnvError(f"{script} exited {proc.returncode}:\n{tail}")
    return proc


class CeleryWorker:
    """A real ``celery worker`` (solo pool) in a subprocess, started and stopped cleanly.

    ``app_dir`` is put on the worker's PYTHONPATH and ``app_module`` is passed to ``-A``.
    ``start()`` returns once the worker logged that it is ready (bounded by
    ``ready_timeout``) and raises ``CeleryEnvError`` with the worker's log if it exited or did
    not get ready in time. ``stop()`` sends SIGTERM (warm shutdown), waits up to
    ``stop_timeout`` and then kills the process group. Usable as a context manager.
    """

    def __init__(
        self,
        app_dir: str | os.PathLike[str],
        app_module: str,
        *,
        broker_url: str,
        backend_url: str | None = None,
        queues: Iterable[str] = ("celery",),
        hostname: str | None = None,
        loglevel: str = "INFO",
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.app_dir = Path(app_dir)
        self.app_module = app_module
        self.broker_url = broker_url
        self.backend_url = backend_url
        self.queues = list(queues)
        self.hostname = hostname or f"celeriac-interop-{uuid.uuid4().hex[:8]}@%h"
        self.loglevel = loglevel
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    def command(self) -> list[str]:
        python = celery_python()
        cmd = [str(python), "-m", "celery", "-A", self.app_module, "-b", self.broker_url]
        if self.backend_url:
            cmd += ["--result-backend", self.backend_url]
        cmd += [
            "worker",
            "-P",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            ",".join(self.queues),
            "-n",
            self.hostname,
            "-l",
            self.loglevel,
            *self.extra_args,
        ]
        return cmd

    def start(self) -> CeleryWorker:
        if self.proc is not None:
            raise CeleryEnvError("worker already started")
        ensure(quiet=True)
        if self.log_path is None:
            fd, name = _mkstemp(prefix="celery-worker-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = _clean_env(self.env)
        env["PYTHONPATH"] = str(self.app_dir)
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.app_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None and self.log_path is not None
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.05
        while True:
            text = self.log()
            if _looks_ready(text):
                return
            if self.proc.poll() is not None:
                raise CeleryEnvError(
                    f"celery worker exited with {self.proc.returncode} before it was ready:\n"
                    f"{text[-4000:]}"
                )
            if time.monotonic() >= deadline:
                raise CeleryEnvError(
                    f"celery worker not ready after {self.ready_timeout:.0f}s:\n{text[-4000:]}"
                )
            time.sleep(delay)  # polling a log file: there is nothing to block on
            delay = min(delay * 1.5, 0.5)

    def log(self) -> str:
        """Everything the worker has written so far (stdout and stderr)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """Warm-shutdown the worker, kill it after ``stop_timeout``; return its exit code."""
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            code = proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: The Celery app of the interop tests (``e2e.add``, ``e2e.fail``, ...), twin of our own.
E2E_DIR = Path(__file__).resolve().parent / "e2e"


def e2e_worker(
    broker_url: str, queue: str, hostname: str, *, extra_args: Sequence[str] = (), **options: Any
) -> CeleryWorker:
    """A Celery worker of the e2e app consuming ``queue`` (start it with ``with``)."""
    return CeleryWorker(
        E2E_DIR,
        "e2e_celery_app",
        broker_url=broker_url,
        queues=[queue],
        hostname=hostname,
        env={"CELERIAC_E2E_QUEUE": queue},
        ready_timeout=90.0,
        extra_args=extra_args,
        **options,
    )


def _looks_ready(log_text: str) -> bool:
    # Celery logs "<hostname> ready." from celery.apps.worker once the consumer is running.
    return any(line.rstrip().endswith(" ready.") for line in log_text.splitlines())


def _mkstemp(prefix: str, suffix: str) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=prefix, suffix=suffix)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["ensure", "python", "versions", "path"])
    ns = parser.parse_args(argv)
    try:
        if ns.command == "ensure":
            print(ensure())
        elif ns.command == "python":
            if not _is_ready(venv_dir()):
                print(f"not built: run {sys.argv[0]} ensure", file=sys.stderr)
                return 1
            print(celery_python())
        elif ns.command == "path":
            print(venv_dir())
        else:
            python = ensure(quiet=True)
            print(_run([str(python), "-c", _VERSION_CHECK], timeout=120).stdout.strip())
    except CeleryEnvError as exc:
        print(f"celery_env: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
