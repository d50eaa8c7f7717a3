"""celeriac worker caps glibc's malloc arenas, unless MALLOC_ARENA_MAX says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "from celeriac.worker.arenas import limit_malloc_arenas; print(limit_malloc_arenas())"


def _run(env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="malloc arenas are glibc's (mallopt); other platforms have none to cap",
)
def test_arenas_are_capped_on_glibc() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"


def test_the_environment_wins() -> None:
    assert _run({**os.environ, "MALLOC_ARENA_MAX": "8"}) == "False"
