"""``celeriac events``: watch what workers and clients do, live."""

from __future__ import annotations

import json

import click

from ..events import EventReceiver, render
from .loading import app_option, broker_option, load_app

__all__ = ["events"]


@click.command()
@app_option
@broker_option
@click.option("--dump", is_flag=True, help="Print each event as one JSON line.")
@click.option("-n", "--count", type=int, help="Stop after this many events.")
@click.option("-t", "--timeout", type=float, help="Stop after this many quiet seconds.")
def events(
    app_spec: str | None, broker: str | None, dump: bool, count: int | None, timeout: float | None
) -> None:
    """Print events (task-received, task-succeeded, worker-heartbeat, ...) as they happen.

    Workers send them when started with -E (or after `celeriac control enable_events`).

    \b
    Examples:
        celeriac events -b redis://localhost:6379/0
        celeriac events --dump -A proj.tasks:app | jq .type
    """
    app = load_app(app_spec, broker)
    seen = 0
    try:
        with EventReceiver(app) as receiver:
            while count is None or seen < count:
                found = receiver.next(timeout=timeout)
                if found is None:
                    break
                seen += 1
                click.echo(json.dumps(found, default=str) if dump else render(found))
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
