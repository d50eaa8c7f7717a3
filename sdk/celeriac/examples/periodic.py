"""Periodic tasks: an example app with every kind of schedule.

Run a worker that also sends the periodic tasks (no server needed: SQLite files)::

    celeriac worker -A celeriac.examples.periodic:app --beat

or the worker and any number of beats apart (one of them leads; kill it and another takes
over within a few seconds, sending the ticks it missed)::

    celeriac worker -A celeriac.examples.periodic:app
    celeriac beat -A celeriac.examples.periodic:app      # in two or three terminals

On Redis, the beats elect their leader in the result backend::

    CELERIAC_BROKER_URL=redis://127.0.0.1:6379/0 CELERIAC_RESULT_BACKEND=redis://127.0.0.1:6379/0 \\
        celeriac beat -A celeriac.examples.periodic:app
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from celeriac import App
from celeriac.schedules import crontab

app = App("periodic", timezone="Europe/Berlin")


@app.task
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@app.task(bind=True)
def heartbeat(self: Any) -> str:
    """Say which tick this is: beats send the scheduled time in the ``beat_tick`` header."""
    tick = self.request.headers.get("beat_tick")
    print(f"heartbeat for tick {tick}")
    return str(tick)


@app.task
def report(kind: str) -> str:
    """Pretend to build a report."""
    return f"{kind} report done"


# Celery's format, in the beat_schedule setting (seconds, a timedelta, crontab or a datetime).
# Settings are frozen: give them to App(...), or replace them as here.
app.conf = app.conf.replace(
    beat_schedule={
        "heartbeat every 10 s": {"task": heartbeat.name, "schedule": 10.0},
        "weekday mornings": {
            "task": report.name,
            # 07:30 Berlin time (the app's timezone), Monday to Friday; DST handled.
            "schedule": crontab(minute=30, hour=7, day_of_week="mon-fri"),
            "args": ["daily"],
            "options": {"expires": 3600},
        },
        "once, on new year's morning": {
            "task": report.name,
            # A naive datetime is read in the app's timezone; it fires once (late if missed).
            "schedule": datetime(2030, 1, 1, 9, 0),
            "args": ["new year"],
        },
    }
)

# Or in code, as Celery's app.add_periodic_task.
app.add_periodic_task(timedelta(minutes=1), add.s(2, 3), name="add every minute")
app.add_periodic_task(crontab(minute="*/15"), report.s("quarter-hourly"))
