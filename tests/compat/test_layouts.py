"""Example apps laid out as Celery users lay them out, each kept as a Celery copy and a
Celeriac copy: the copies differ only in import lines, ``-A`` finds the same app in both, and
real Celery 5.7 (client and worker, on Redis) and real Celeriac (on Redis, and on SQLite) give
the driver the same observations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers import REDIS_URL, require
from tests.compat.harness import (
    beat_both,
    copies,
    differences,
    found_app,
    run_both,
    with_django,
)

LAYOUTS = ["include_pkg", "flask_ctx", "django_proj", "beat_routes", "signals_app", "canvas_app"]
#: The ways a user names each layout's app to ``-A``.
SPECS = {
    "include_pkg": ["proj", "proj.celery", "proj.celery:app", "proj.celery.app"],
    "flask_ctx": ["make_celery", "make_celery:celery_app", "make_celery.celery_app"],
    "django_proj": ["mysite", "mysite.celery", "mysite:celery_app", "mysite.celery_app"],
    "beat_routes": ["proj", "proj.celery:app"],
    "signals_app": ["proj"],
    "canvas_app": ["proj"],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_copies_differ_only_in_import_lines(layout: str) -> None:
    theirs, _ = copies(layout)
    assert any(theirs.rglob("*.py")), theirs
    assert differences(layout) == []


def test_the_diff_catches_more_than_a_renamed_import(tmp_path: Path) -> None:
    for side in ("celery", "celeriac"):
        (tmp_path / "x" / side).mkdir(parents=True)
    (tmp_path / "x" / "celery" / "m.py").write_text("from celery import Celery\napp = Celery()\n")
    ours = tmp_path / "x" / "celeriac" / "m.py"
    ours.write_text("from celeriac import Celery\napp = Celery()\n")
    assert differences("x", tmp_path) == []
    ours.write_text("from celeriac import Celery\napp = Celery(backend=None)\n")
    assert differences("x", tmp_path) == ["m.py: differs in more than its import lines"]
    ours.write_text("from celery import Celery\napp = Celery()\n")  # not renamed
    assert differences("x", tmp_path) != []


@pytest.mark.parametrize(
    ("layout", "spec"), [(layout, spec) for layout in LAYOUTS for spec in SPECS[layout]]
)
def test_dash_a_finds_the_same_app(layout: str, spec: str) -> None:
    from interop import celery_env

    celery_env.ensure(quiet=True)
    theirs, ours = copies(layout)
    found = found_app("celery", with_django(theirs) if layout == "django_proj" else theirs, spec)
    assert not found.startswith("error"), found
    assert found_app("celeriac", ours, spec) == found


@pytest.fixture(params=["redis", "sqlite"])
def ours_on(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str] | None:
    """Celeriac's broker and backend: Redis, as Celery's, or SQLite files (which Celery
    cannot use: its run on Redis is the reference)."""
    require("redis")
    if request.param == "redis":
        return None
    return f"sqlite:///{tmp_path}/broker.db", f"sqlite:///{tmp_path}/results.db"


BACKEND = REDIS_URL.rsplit("/", 1)[0] + "/4"


def test_include_pkg_behaves_the_same(ours_on: tuple[str, str] | None) -> None:
    celery, celeriac = run_both(
        "include_pkg", "proj", "include_pkg.py", REDIS_URL, BACKEND, celeriac_urls=ours_on
    )
    assert celery["names"] == [
        "proj.billing.tasks.add",
        "proj.custom_name",
        "proj.tasks.add",
        "proj.tasks.mul",
        "proj.tasks.request_fields",
        "proj.tasks.waits_inside",
        "proj.tasks.whoami",
        "proj.tasks.xsum",
    ]
    assert celery["group | task | task"] == 16
    assert celery["get() inside a task"].startswith("RuntimeError: Never call result.get()")
    assert celery["timeout type"] == ["exceptions", "TimeoutError"]
    theirs = celery["request"]
    assert theirs["timelimit"] == [30, 20] and theirs["kwargs"] == {"key": "v"}
    # Both clients set origin and reply_to (Celery's with any result backend).
    assert theirs["origin set"] is True and theirs["reply_to set"] is True
    assert celeriac == celery


def test_flask_ctx_behaves_the_same(ours_on: tuple[str, str] | None) -> None:
    celery, celeriac = run_both(
        "flask_ctx", "make_celery", "flask_ctx.py", REDIS_URL, BACKEND, celeriac_urls=ours_on
    )
    assert celery["add"] == {"sum": 5, "in_context": "flaskr"}  # the base class's __call__ ran
    assert celeriac == celery


def test_django_proj_behaves_the_same(ours_on: tuple[str, str] | None) -> None:
    celery, celeriac = run_both(
        "django_proj",
        "mysite",
        "django_proj.py",
        REDIS_URL,
        BACKEND,
        django=True,
        celeriac_urls=ours_on,
    )
    assert celery["setting in the worker"] == "compat-suite"  # Django was set up in the worker
    assert celery["broker"] is True  # CELERY_BROKER_URL, not the unprefixed BROKER_URL
    assert celeriac == celery


def test_beat_routes_like_a_client() -> None:
    require("redis")
    celery, celeriac = beat_both("beat_routes", "proj", REDIS_URL, BACKEND, entries=5)
    assert celery == [
        "proj.tasks.cleanup cleanup Q.maint",  # task_routes
        "proj.tasks.record default Q",  # the default queue
        "proj.tasks.record entry option Q.entry",  # the entry's options
        "proj.tasks.record periodic task Q",  # add_periodic_task in on_after_configure
        "proj.tasks.report report Q.reports",  # the task's own queue
    ]
    assert celeriac == celery


def test_signals_app_behaves_the_same() -> None:
    require("redis")
    celery, celeriac = run_both("signals_app", "proj", "signals_app.py", REDIS_URL, BACKEND)
    started = ("task_received", "task_prerun")
    succeeded = (*started, "on_success", "task_success", "after_return", "task_postrun")
    assert [line[0] for line in celery] == [
        *succeeded,
        *(*started, "errback", "on_failure", "task_failure", "after_return", "task_postrun"),
        *(*started, "on_retry", "task_retry", "task_postrun"),  # no after_return
        *succeeded,
        *succeeded,  # fragile: its on_success raises
        "fragile",
    ]
    assert celery[-1] == ["fragile", ["kept", "SUCCESS"]]  # a raising on_success changes nothing
    assert celeriac == celery
