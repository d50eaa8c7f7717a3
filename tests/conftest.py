"""Checks made once before any test: the installed Celeriac matches this checkout."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def missing_entry_points(pyproject: Path = _PYPROJECT) -> list[str]:
    """The entry points (transports, backends) ``pyproject`` declares and the installed
    metadata lacks."""
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"]
    return [
        f"{group}: {name}"
        for group, names in declared.items()
        for name in sorted(set(names) - {ep.name for ep in entry_points(group=group)})
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    # An editable install keeps the entry points of the pyproject.toml it was made from: after a
    # merge adds a transport, its tests fail with "no transport serves ..." until reinstalled.
    missing = missing_entry_points()
    if missing:
        pytest.exit(
            "the installed celeriac predates this checkout's pyproject.toml (entry points "
            f"missing: {'; '.join(missing)}): run scripts/bootstrap (or pip install -e '.[dev]')",
            returncode=4,
        )
