"""``celeriac beat``: run the periodic-task scheduler (several may run; one leads)."""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

import click

from .. import signals
from .loading import app_option, broker_option, load_app
from .logs import redirected_stdouts, setup_logging

if TYPE_CHECKING:
    from ..app import App
    from ..beat import Beat

__all__ = ["beat"]


@click.command()
@app_option
@broker_option
@click.option(
    "--lock-url",
    help="Where beats elect their leader and keep the last ticks (beat_lock_url): redis://, "
    "sqlite:///, zookeeper:// or memory://. Default: the result backend, else the broker.",
)
@click.option(
    "--max-interval",
    type=float,
    help="Longest sleep between looks at the schedule, in seconds (beat_max_loop_interval).",
)
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def beat(
    app_spec: str | None,
    broker: str | None,
    lock_url: str | None,
    max_interval: float | None,
    loglevel: str,
) -> None:
    """Send periodic tasks on schedule, until SIGTERM or SIGINT.

    The schedule is the app's beat_schedule (and add_periodic_task). Run as many beats as you
    like for availability: they elect one leader in the lock store, which alone sends; when
    it dies another takes over within a few seconds (beat_lease_seconds + beat_renew_seconds)
    and sends the ticks it missed (beat_catch_up: 'latest' once, or 'all').

    \b
    Examples:
        celeriac beat -A proj.tasks:app
        celeriac beat -A proj.tasks:app --lock-url redis://127.0.0.1:6379/1 -l debug
        CELERIAC_BEAT_CATCH_UP=all celeriac beat -A proj.tasks:app
        celeriac worker -A proj.tasks:app --beat      # a beat inside a worker
    \b
    In proj/tasks.py:
        from celeriac.schedules import crontab
        app.conf.beat_schedule["nightly"] = {
            "task": "proj.tasks.report", "schedule": crontab(minute=0, hour=3),
        }
    """
    app = load_app(app_spec, broker)
    ours = setup_logging(loglevel, app.conf)
    if lock_url:
        app.conf = app.conf.replace(beat_lock_url=lock_url)
    scheduler = start_beat(app, max_interval)
    signals.beat_init.send(scheduler)

    def handle(signum: int, frame: Any) -> None:
        logging.getLogger("celeriac.beat").info("beat %s: stopping", scheduler.owner)
        scheduler.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    from ..beat import LockStoreError

    try:
        with redirected_stdouts(app.conf) if ours else contextlib.nullcontext():
            scheduler.run()
    except LockStoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        app.close()


def start_beat(app: App, max_interval: float | None = None) -> Beat:
    """A Beat with its lock store open; settings errors as clean command-line errors."""
    from ..beat import Beat, LockStoreError
    from ..config import ConfigError

    try:
        scheduler = Beat(app, max_interval=max_interval)
        _ = scheduler.store  # a bad lock URL fails here, before the loop
    except (ConfigError, LockStoreError) as exc:
        raise click.ClickException(str(exc)) from None
    return scheduler
