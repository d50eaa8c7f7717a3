"""The ``celeriac`` command line."""

from __future__ import annotations

import click

from .beat import beat
from .calls import call, purge, result
from .dashboard import dashboard
from .demo import demo
from .dlq import dlq
from .events import events
from .interop import interop
from .loading import app_option, broker_option
from .protocol_demo import protocol_demo
from .remote import control, inspect, status
from .worker import worker

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="celeriac")
@app_option
@broker_option
@click.pass_context
def main(ctx: click.Context, app_spec: str | None, broker: str | None) -> None:
    """Celeriac: a task queue that speaks Celery's wire protocol on every broker.

    -A and -b go before the command (as Celery's: celeriac -A proj worker) or after it; after
    it, they win.

    \b
    Examples:
        celeriac demo                                   # a worker and a client, no server
        celeriac -A proj worker -l info                 # as celery -A proj worker -l info
        celeriac worker -A proj.tasks:app -c 8 -Q default,urgent
        celeriac call proj.add --args '[2, 3]' -A proj.tasks:app --wait
        celeriac dlq list default -A proj.tasks:app     # rejected messages and why
        celeriac beat -A proj.tasks:app                 # periodic tasks (one leader)
        celeriac inspect active -b redis://localhost     # what every worker runs now
        celeriac dashboard -b redis://localhost          # live web page on 127.0.0.1:5555
    """
    ctx.obj = {"app_spec": app_spec, "broker": broker}


for command in (
    worker,
    beat,
    call,
    result,
    purge,
    dlq,
    inspect,
    control,
    status,
    events,
    dashboard,
    demo,
    protocol_demo,
    interop,
):
    main.add_command(command)
