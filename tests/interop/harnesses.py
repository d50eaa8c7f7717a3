"""Build (once, cached under ~/.cache/celeriac) and drive the foreign-client harnesses.

interop/clients/node (celery-node from npm), interop/clients/node-celery (node-celery 0.2.8 from
npm, protocol v1, with redis@3 beside it), interop/clients/rust (the celery crate from crates.io)
and interop/clients/celery (Celery 5.7 from the Celery venv). Each can send the conformance set;
all but node-celery (a client only) can run a worker with the conformance tasks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interop import celery_env
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "interop" / "clients"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "celeriac"
NODE_DIR = CACHE / "interop-node"
NODE_CELERY_DIR = CACHE / "interop-node-celery"
RUST_TARGET = CACHE / "rust-target"


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def node_modules(harness: str = "node", target: Path = NODE_DIR) -> Path:
    """A node harness's packages installed from npm into the cache (again only when its package
    files change): celery-node for ``node``, node-celery for ``node-celery``."""
    src = CLIENTS / harness
    files = [src / "package.json", src / "package-lock.json"]
    stamp = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    with _lock(target.name):
        mark = target / ".stamp"
        if not (mark.exists() and mark.read_text() == stamp):
            target.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy(f, target / f.name)
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=target,
                check=True,
                capture_output=True,
                timeout=600,
            )
            mark.write_text(stamp)
    return target / "node_modules"


def rust_binary() -> Path:
    """The rusty-celery harness built by cargo (target dir cached: a rebuild is incremental)."""
    with _lock("interop-rust"):
        proc = subprocess.run(
            ["cargo", "build", "--quiet"],
            cwd=CLIENTS / "rust",
            env={**os.environ, "CARGO_TARGET_DIR": str(RUST_TARGET)},
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert proc.returncode == 0, f"cargo build failed:\n{proc.stderr[-4000:]}"
    return RUST_TARGET / "debug" / "interop-rust"


def _command(
    client: str, mode: str, broker: str, backend: str, queue: str
) -> tuple[list[str], dict[str, str], Path]:
    env = dict(os.environ)
    if client == "celery-node":
        env["NODE_PATH"] = str(node_modules())
        return ["node", "interop.js", mode, broker, backend, queue], env, CLIENTS / "node"
    if client == "node-celery":
        env["NODE_PATH"] = str(node_modules("node-celery", NODE_CELERY_DIR))
        return ["node", "interop.js", mode, broker, backend, queue], env, CLIENTS / "node-celery"
    if client == "rusty-celery":
        return [str(rust_binary()), mode, broker, queue], env, CLIENTS / "rust"
    py = str(celery_env.ensure(quiet=True))
    return [py, "harness.py", mode, broker, backend, queue], env, CLIENTS / "celery"


def send(
    client: str, broker: str, backend: str, queue: str, cases: list[dict[str, Any]], wait: float = 0
) -> list[dict[str, Any]]:
    """Run the harness's ``send`` mode; its JSON lines."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
    try:
        cmd, env, cwd = _command(client, "send", broker, backend, queue)
        cmd.append(f.name)
        if wait and client != "rusty-celery":
            cmd.append(str(wait))
        if client == "celery":
            env = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120 + 2 * wait
        )
    finally:
        os.unlink(f.name)
    assert proc.returncode == 0, (
        f"{client} send failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


class ForeignWorker:
    """A celery-node or rusty-celery worker subprocess; its JSON lines are kept in ``lines``."""

    def __init__(self, client: str, broker: str, backend: str, queue: str) -> None:
        cmd, env, cwd = _command(client, "worker", broker, backend, queue)
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        eventually(lambda: self.ready(), timeout=60, what=f"{client} worker ready")

    def text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"worker exited:\n{self.text()[-3000:]}"
        return any(line.get("ready") for line in self.lines())

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self.log.close()
        os.unlink(self.log.name)


#: (client, broker) -> mode -> cell text; printed by tests/interop/conftest.py at the end.
MATRIX: dict[tuple[str, str], dict[str, str]] = {}


def record(client: str, broker: str, mode: str, cell: str) -> None:
    MATRIX.setdefault((client, broker), {})[mode] = cell
