"""Typing from a user's side: the wheel, installed in a venv of its own, type-checked in strict
mode by mypy and pyright on a project outside the repository. Every line marked ``# error``
must be reported, and nothing else."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).with_name("project")
CACHE = Path(os.environ.get("CELERIAC_CACHE", Path.home() / ".cache" / "celeriac")) / "typing"
# The dependencies the wheel declares, plus the two checkers, installed once in the cached venv.
TOOLS = ["mypy", "pyright", "orjson>=3.9", "click>=8.1", "rich>=13", "starlette>=0.37",
         "uvicorn>=0.29"]  # fmt: skip


def _run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the freshly built wheel (its dependencies and the checkers are cached)."""
    dist = tmp_path_factory.mktemp("dist")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, REPO)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(dist.glob("celeriac-*.whl"))
    env = CACHE / "user-venv"
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
        setup = _run(python, "-m", "pip", "install", "-q", *TOOLS)
        if setup.returncode != 0:
            shutil.rmtree(env)
            raise AssertionError(setup.stdout + setup.stderr)
    installed = _run(python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                     wheel)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The sample project, copied outside the repository (so nothing of the repo is seen)."""
    target = tmp_path / "user-project"
    shutil.copytree(PROJECT, target)
    return target


def _expected(project: Path) -> set[tuple[str, int]]:
    lines = set()
    for source in sorted(project.rglob("*.py")):
        for number, text in enumerate(source.read_text().splitlines(), 1):
            if text.rstrip().endswith("# error"):
                lines.add((source.relative_to(project).as_posix(), number))
    return lines


def test_the_wheel_ships_py_typed(user_venv: Path) -> None:
    found = list((user_venv / "lib").glob("python*/site-packages/celeriac/py.typed"))
    assert len(found) == 1


def test_mypy_strict_reports_exactly_the_marked_lines(user_venv: Path, project: Path) -> None:
    checked = _run(user_venv / "bin" / "python", "-m", "mypy", "--strict",
                   "--no-incremental", "proj", cwd=project)  # fmt: skip
    reported = {
        (m[1], int(m[2]))
        for m in re.finditer(r"^(\S+\.py):(\d+): error:", checked.stdout, re.MULTILINE)
    }
    assert reported == _expected(project), checked.stdout


def test_pyright_strict_reports_exactly_the_marked_lines(user_venv: Path, project: Path) -> None:
    config = {"typeCheckingMode": "strict", "include": ["proj"],
              "venvPath": str(user_venv.parent), "venv": user_venv.name}  # fmt: skip
    (project / "pyrightconfig.json").write_text(json.dumps(config))
    checked = _run(user_venv / "bin" / "pyright", cwd=project)
    reported = {
        (Path(m[1]).relative_to(project).as_posix(), int(m[2]))
        for m in re.finditer(r"^\s*(/\S+\.py):(\d+):\d+ - error:", checked.stdout, re.MULTILINE)
    }
    assert reported == _expected(project), checked.stdout
