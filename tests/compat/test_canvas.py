"""Canvas as Celery runs it: groups and chords in the middle of a chain, Celery's built-in
canvas tasks by name, saved group results and a task's children. The canvas_app layout runs
with Celery 5.7 (client and worker) and with Celeriac on Redis, then crossed (a Celery client
with a Celeriac worker, and the reverse); every run observes the same."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from interop import celery_env
from tests.brokers import REDIS_URL, require
from tests.compat.harness import renamed, run_both, run_crossed

BACKEND = REDIS_URL.rsplit("/", 1)[0] + "/4"

#: What Celery 5.7 gives for each canvas of the driver (checked, so the reference is sane).
EXPECTED = {
    "a | group | b": 7,  # (2+1) + (2+2)
    "a | chord | b": 109,  # (2+1) + (2*3) + 100
    "a | group | group": [[3, 4], 7],
    "a | group": [3, 4],
    "group | group | b": [6, [2, 4]],
    "a | group | b | c": 70,
    "chord with a chain body | c": 21,
    "a | group of one | b": 9,  # a group of one task is that task
    "a | chord | chord": 35,  # [3, 4] gives 7, then 7*2 + 7*3
}


@pytest.fixture(scope="module")
def same_side() -> tuple[Any, Any]:
    require("redis")
    return run_both("canvas_app", "proj", "canvas_app.py", REDIS_URL, BACKEND)


@pytest.fixture(scope="module")
def crossed() -> tuple[Any, Any]:
    require("redis")
    return run_crossed("canvas_app", "proj", "canvas_app.py", REDIS_URL, BACKEND)


def test_celery_runs_the_canvases_as_expected(same_side: tuple[Any, Any]) -> None:
    celery, _ = same_side
    assert {k: celery[k] for k in EXPECTED} == EXPECTED


def test_celeriac_runs_them_as_celery(same_side: tuple[Any, Any]) -> None:
    celery, celeriac = same_side
    assert celeriac == celery


def test_celeriac_on_sqlite_runs_them_as_celery(
    same_side: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Celeriac with an SQLite broker and result store (which Celery cannot use) observes what
    Celery does on Redis."""
    folder = tmp_path_factory.mktemp("canvas-sqlite")
    urls = (f"sqlite:///{folder}/broker.db", f"sqlite:///{folder}/results.db")
    _, on_sqlite = run_both(
        "canvas_app", "proj", "canvas_app.py", REDIS_URL, BACKEND, celeriac_urls=urls
    )
    assert on_sqlite == same_side[0]


def test_a_celery_client_and_a_celeriac_worker_and_the_reverse(
    same_side: tuple[Any, Any], crossed: tuple[Any, Any]
) -> None:
    celery, _ = same_side
    celery_client, celeriac_client = crossed
    assert celery_client == celery
    assert celeriac_client == celery


def test_a_saved_group_restores_the_same(same_side: tuple[Any, Any]) -> None:
    celery, celeriac = same_side
    assert celery["saved group"] == {
        "same ids": True,
        "same group id": True,
        "values": [0, 2, 4],
        "tuple shape": None,  # no parent
        "after delete": None,
    }
    assert celeriac["saved group"] == celery["saved group"]


_SAVE = """
import json, sys
from celery import Celery
app = Celery("save", backend=sys.argv[1])
parent = app.AsyncResult("p-1")
members = [app.AsyncResult("t-1"), app.AsyncResult("t-2", parent=parent)]
saved = app.GroupResult("g-" + sys.argv[2], members)
saved.save()
print(json.dumps(saved.as_tuple()))
"""

_RESTORE = """
import json, sys
from celery import Celery
from celery.result import GroupResult
app = Celery("restore", backend=sys.argv[1])
app.set_current()
restored = GroupResult.restore("g-" + sys.argv[2])
print(json.dumps([type(restored).__name__, restored.as_tuple()]))
"""


@pytest.mark.parametrize("saver", ["celery", "celeriac"])
def test_a_group_saved_by_one_is_restored_by_the_other(saver: str) -> None:
    require("redis")
    key = uuid.uuid4().hex
    restorer = "celeriac" if saver == "celery" else "celery"
    saved = _script(saver, _SAVE, BACKEND, key)
    restored = _script(restorer, _RESTORE, BACKEND, key)
    assert saved == [
        [f"g-{key}", None],
        [[["t-1", None], None], [["t-2", [["p-1", None], None]], None]],
    ]
    assert restored == ["GroupResult", saved]


def _script(side: str, source: str, *argv: str) -> Any:
    """Run a script written for Celery with Celery 5.7, or import-renamed with Celeriac."""
    python = str(celery_env.ensure(quiet=True))
    if side == "celeriac":
        python = sys.executable
        source = "\n".join(renamed(line) for line in source.splitlines())
    done = subprocess.run([python, "-c", source, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_children_and_collect_as_celery(
    same_side: tuple[Any, Any], crossed: tuple[Any, Any]
) -> None:
    celery, celeriac = same_side
    assert celery["children"] == {
        "kinds": ["GroupResult", "AsyncResult"],
        "group size": 3,
        "group members have no children": [[], [], []],
        "collect": [3, [0, 2, 4], 103, 0, 2, 4],
        "collect leaves": [103, 0, 2, 4],
        "chain step is its parent's child": True,
        "children of an unknown id": None,
        "two callbacks are one group child": ["GroupResult", [6, 9]],
    }
    assert celeriac["children"] == celery["children"]
    # A Celery client reads the children a Celeriac worker stored, and the reverse.
    assert crossed[0]["children"] == celery["children"]
    assert crossed[1]["children"] == celery["children"]


def test_celerys_builtin_tasks_by_name(
    same_side: tuple[Any, Any], crossed: tuple[Any, Any]
) -> None:
    celery, celeriac = same_side
    assert celery["builtins"] == {
        "map": [3, 3],
        "starmap": [2, 4],
        "chunks": [[0, 2], [4, 6], [8]],  # a group of celery.starmap messages
        "accumulate": [1, 2, 3],
        "accumulate index": 2,
        "backend_cleanup": None,
        "chain by name": ["FAILURE", "chain is not a real task"],
        "chord_unlock sends the body": 6,
        # Both send the group and store the GroupResult they return as its result tuple.
        "group by name": [True, [0, 2]],
        "chunks by name": [2],
    }
    assert celeriac["builtins"] == celery["builtins"]
    assert crossed[0]["builtins"] == celery["builtins"]
    assert crossed[1]["builtins"] == celery["builtins"]
