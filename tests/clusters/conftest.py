"""The cluster suite's topologies (started here, stopped at the end) and its figures table.

Run with ``pytest -m cluster tests/clusters`` (``scripts/test`` runs it as its second stage).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from .drain import REPO, Figures

FIGURES: list[Figures] = []
_COLUMNS = (
    "topology",
    "scenario",
    "tasks",
    "lost",
    "duplicated",
    "bound",
    "outage_s",
    "resume_s",
    "ran_after",
)


def services(*args: str, timeout: float = 180) -> str:
    """Run ``scripts/services cluster ...``; its output, or a failure naming what it said."""
    done = subprocess.run(
        [str(REPO / "scripts/services"), "cluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise AssertionError(f"scripts/services cluster {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def rabbitmq_cluster() -> Iterator[list[str]]:
    """A 3-node RabbitMQ cluster; the AMQP URL of each node."""
    services("up", "rabbitmq")
    try:
        yield [f"amqp://guest:guest@127.0.0.1:{5680 + n}//" for n in (1, 2, 3)]
    finally:
        services("down", "rabbitmq")


@pytest.fixture
def sentinel_cluster() -> Iterator[str]:
    """Redis master, replica and three sentinels, fresh for each test; the sentinel:// URL."""
    services("up", "sentinel")
    try:
        yield ";".join(f"sentinel://127.0.0.1:{p}/0" for p in (26379, 26380, 26381))
    finally:
        services("down", "sentinel")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("cluster scenarios: lost must be 0, duplicated <= bound")
        rows = [[f.cell(c) for c in _COLUMNS] for f in FIGURES]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(_COLUMNS)]
        terminalreporter.write_line(
            "  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True))
        )
        for r in rows:
            terminalreporter.write_line(
                "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))
            )
