"""Cached virtualenvs for the peers (Dramatiq, Taskiq), apart from ours, built on first use.

    ~/.cache/celeriac/venvs/bench-<name>-<hash>/     (override the root: CELERIAC_BENCH_VENVS)

Like ``interop/celery_env.py`` does for Celery: never installed into the project's venv, so the
peers' dependencies cannot leak into ours. A stamp file holds the requirement set; a venv whose
stamp matches is reused as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PEERS", "ensure", "peer_env", "python_for"]

#: What each peer's venv holds (orjson and psutil: the side scripts use them too).
PEERS: dict[str, tuple[str, ...]] = {
    "dramatiq": ("dramatiq[redis,rabbitmq]", "orjson", "psutil"),
    "taskiq": ("taskiq", "taskiq-redis", "taskiq-aio-pika", "orjson", "psutil"),
}
_STAMP = "celeriac-bench-stamp.txt"


def _stamp(name: str) -> str:
    lines = [f"python={sys.version_info[0]}.{sys.version_info[1]}", *PEERS[name]]
    return "\n".join(lines) + "\n"


def _root(name: str) -> Path:
    base = os.environ.get("CELERIAC_BENCH_VENVS")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(_stamp(name).encode()).hexdigest()[:8]
    root = Path(base) if base else cache / "celeriac" / "venvs"
    return root / f"bench-{name}-{digest}"


def python_for(name: str) -> Path:
    return _root(name) / "bin" / "python"


def _base_python() -> str:
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(candidate) if candidate.exists() else (shutil.which("python3") or "python3")


def ensure(name: str) -> Path:
    """Build ``name``'s venv if it is missing or stale; return its python."""
    root = _root(name)
    stamp = root / _STAMP
    if stamp.exists() and stamp.read_text() == _stamp(name):
        return python_for(name)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == _stamp(name):
            return python_for(name)
        print(f"[bench] building the {name} venv at {root}", file=sys.stderr, flush=True)
        if root.exists():
            shutil.rmtree(root)
        subprocess.run([_base_python(), "-m", "venv", str(root)], check=True)
        pip = [str(python_for(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        proc = subprocess.run([*pip, *PEERS[name]], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install for {name} failed:\n{proc.stderr[-3000:]}")
        stamp.write_text(_stamp(name))
    return python_for(name)


def peer_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment minus anything that points at our venv, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "__PYVENV_LAUNCHER__"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env
