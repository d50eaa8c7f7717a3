"""Beat routes each entry's task as a client's call of it would be (Celery's beat calls the
registered task's apply_async): the task's own queue, then the entry's options, then
task_routes (names, globs, regexes, router functions), then the default queue."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from celeriac import App
from celeriac.beat import Beat
from celeriac.protocol import decode_task


def _router(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    return {"queue": "by-function"} if name.endswith(".routed_by_function") else None


def test_each_entry_goes_where_a_client_call_would() -> None:
    name = uuid.uuid4().hex[:8]
    app = App(
        "proj",
        broker=f"memory://beat-{name}",
        backend=None,
        beat_lock_url=f"memory://beat-lock-{name}",
        task_routes=[
            [("proj.tasks.cleanup", {"queue": "maint"})],  # ordered (pattern, route) pairs
            {re.compile(r".*\.regex_\w+"): "by-regex"},
            _router,
        ],
    )

    @app.task(name="proj.tasks.report", queue="reports")
    def report() -> None: ...

    @app.task(name="proj.tasks.cleanup")
    def cleanup() -> None: ...

    @app.task(name="proj.tasks.regex_one")
    def regex_one() -> None: ...

    @app.task(name="proj.tasks.routed_by_function")
    def routed_by_function() -> None: ...

    @app.task(name="proj.tasks.plain", queue="reports")
    def plain() -> None: ...

    for task in (report, cleanup, regex_one, routed_by_function):
        app.add_periodic_task(1.0, task.s(), name=task.name)
    app.add_periodic_task(1.0, plain.s(), name="plain", queue="entry-queue")  # entry wins
    app.add_periodic_task(1.0, app.signature("proj.tasks.unregistered"), name="unregistered")

    beat = Beat(app)
    start = datetime(2026, 1, 1, 12, 0, 0, 200_000, tzinfo=UTC)
    beat.step(now=start)
    beat.step(now=start + timedelta(seconds=1))

    queues = ["reports", "maint", "by-regex", "by-function", "entry-queue", "celery"]
    found: dict[str, list[str]] = {}
    for queue in queues:
        app.declare(queue)
        consumer = app.producer().consumer([queue])
        deliveries = consumer.fetch(100, timeout=0)
        found[queue] = sorted(decode_task(d.message).task for d in deliveries)
        consumer.ack(deliveries)
    assert found == {
        "reports": ["proj.tasks.report"],
        "maint": ["proj.tasks.cleanup"],
        "by-regex": ["proj.tasks.regex_one"],
        "by-function": ["proj.tasks.routed_by_function"],
        "entry-queue": ["proj.tasks.plain"],
        "celery": ["proj.tasks.unregistered"],
    }
