"""Flower, kept apart like real Celery (``interop/celery_env.py``): a cached venv with the
latest Flower 2.x beside celery==5.7.0 and kombu==5.7.0, built once under a file lock.

    ~/.cache/celeriac/venvs/flower-2      (override: CELERIAC_FLOWER_VENV)

``ensure()`` returns the venv's ``celery`` script (``celery flower`` starts Flower).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from interop.celery_env import CELERY_VERSION, KOMBU_VERSION

__all__ = ["REQUIREMENTS", "ensure", "venv_dir"]

REQUIREMENTS: tuple[str, ...] = (
    "flower>=2,<3",
    f"celery[redis]=={CELERY_VERSION}",
    f"kombu[redis]=={KOMBU_VERSION}",
    "amqp>=5.4.2",
)
_STAMP = "celeriac-stamp.txt"


def venv_dir() -> Path:
    override = os.environ.get("CELERIAC_FLOWER_VENV")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "celeriac" / "venvs" / "flower-2"


def _stamp() -> str:
    text = "\n".join([f"python={sys.version_info[0]}.{sys.version_info[1]}", *REQUIREMENTS])
    return hashlib.sha256(text.encode()).hexdigest() + "\n" + text + "\n"


def _ready(root: Path) -> bool:
    stamp = root / _STAMP
    return (root / "bin" / "celery").exists() and stamp.exists() and stamp.read_text() == _stamp()


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")


def ensure() -> Path:
    """Build the venv if it is missing or stale; return its ``celery`` script."""
    root = venv_dir()
    if not _ready(root):
        root.parent.mkdir(parents=True, exist_ok=True)
        with open(root.parent / f".{root.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _ready(root):
                base = Path(sys.base_prefix) / "bin" / "python3"
                _run([str(base), "-m", "venv", "--clear", str(root)])
                pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q"]
                _run([*pip, "--disable-pip-version-check", *REQUIREMENTS])
                (root / _STAMP).write_text(_stamp())
    return root / "bin" / "celery"
