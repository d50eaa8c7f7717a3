"""Finding transports and result backends by URL scheme: what an unserved scheme says."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

import celeriac.backends.registry as backend_registry
import celeriac.transports.registry as transport_registry
from celeriac.backends import open_backend
from celeriac.transports import UnknownScheme, resolve


def _without(scheme: str, group: str) -> list[EntryPoint]:
    return [ep for ep in entry_points(group=group) if ep.name != scheme]


def test_a_builtin_scheme_missing_from_the_install_says_to_reinstall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An editable install made before a transport was added lists no entry point for it:
    the error says so (not "install an extra", which would not help)."""
    monkeypatch.setattr(
        transport_registry,
        "_entry_points",
        lambda: {ep.name: ep for ep in _without("redis+cluster", transport_registry.GROUP)},
    )
    with pytest.raises(UnknownScheme) as info:
        resolve("redis+cluster://h:1/")
    assert "entry points predate it" in str(info.value)
    assert "scripts/bootstrap" in str(info.value)
    assert "celeriac[redis]" not in str(info.value)

    monkeypatch.setattr(
        backend_registry, "entry_points", lambda group: _without("redis+cluster", group)
    )
    with pytest.raises(UnknownScheme, match=r"result backend for redis\+cluster://.*reinstall"):
        open_backend("redis+cluster://h:1/")


def test_a_scheme_nobody_ships_lists_the_installed_ones() -> None:
    with pytest.raises(UnknownScheme) as info:
        resolve("nosuch://h/")
    assert "installed: " in str(info.value) and "redis+cluster" in str(info.value)
    assert "reinstall" not in str(info.value)


def test_the_test_run_notices_an_install_older_than_the_checkout(tmp_path: Path) -> None:
    """tests/conftest.py stops a run whose installed entry points lack one pyproject.toml
    declares (instead of every test of that transport failing with "no transport serves")."""
    from tests.conftest import _PYPROJECT, missing_entry_points

    assert missing_entry_points() == []
    newer = tmp_path / "pyproject.toml"
    newer.write_text(
        _PYPROJECT.read_text().replace(
            '[project.entry-points."celeriac.transports"]\n',
            '[project.entry-points."celeriac.transports"]\nnewmq = "celeriac.transports.x:X"\n',
        )
    )
    assert missing_entry_points(newer) == ["celeriac.transports: newmq"]
