"""Example apps laid out as Celery users lay them out, each kept as a Celery copy and a
Celeriac copy: the copies differ only in import lines, ``-A`` finds the same app in both, and
real Celery 5.7 and real Celeriac (client and worker, on Redis) give the driver the same
observations."""

from __future__ import annotations

import pytest

from tests.brokers import REDIS_URL, require
from tests.compat.harness import copies, differences, found_app, run_both

LAYOUTS = ["include_pkg", "flask_ctx"]
#: The ways a user names each layout's app to ``-A``.
SPECS = {
    "include_pkg": ["proj", "proj.celery", "proj.celery:app", "proj.celery.app"],
    "flask_ctx": ["make_celery", "make_celery:celery_app", "make_celery.celery_app"],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_copies_differ_only_in_import_lines(layout: str) -> None:
    theirs, _ = copies(layout)
    assert any(theirs.rglob("*.py")), theirs
    assert differences(layout) == []


@pytest.mark.parametrize(
    ("layout", "spec"), [(layout, spec) for layout in LAYOUTS for spec in SPECS[layout]]
)
def test_dash_a_finds_the_same_app(layout: str, spec: str) -> None:
    from interop import celery_env

    celery_env.ensure(quiet=True)
    theirs, ours = copies(layout)
    found = found_app("celery", theirs, spec)
    assert not found.startswith("error"), found
    assert found_app("celeriac", ours, spec) == found


def test_include_pkg_behaves_the_same() -> None:
    require("redis")
    celery, celeriac = run_both(
        "include_pkg", "proj", "include_pkg.py", REDIS_URL, REDIS_URL.rsplit("/", 1)[0] + "/4"
    )
    assert celery["names"] == [
        "proj.billing.tasks.add",
        "proj.custom_name",
        "proj.tasks.add",
        "proj.tasks.mul",
        "proj.tasks.whoami",
    ]
    assert celeriac == celery


def test_flask_ctx_behaves_the_same() -> None:
    require("redis")
    celery, celeriac = run_both(
        "flask_ctx", "make_celery", "flask_ctx.py", REDIS_URL, REDIS_URL.rsplit("/", 1)[0] + "/4"
    )
    assert celery["add"] == {"sum": 5, "in_context": "flaskr"}  # the base class's __call__ ran
    assert celeriac == celery
