"""The ``celeriac`` command line."""

from __future__ import annotations

import click

from .lazy import LazyGroup
from .loading import app_option, broker_option

__all__ = ["main"]

#: Each command's module is imported when that command runs (or ``--help`` lists them): a
#: worker does not load what the dashboard, the demos or the interop checks need.
COMMANDS = {
    "worker": ".worker:worker",
    "beat": ".beat:beat",
    "call": ".calls:call",
    "result": ".calls:result",
    "purge": ".calls:purge",
    "dlq": ".dlq:dlq",
    "inspect": ".remote:inspect",
    "control": ".remote:control",
    "status": ".remote:status",
    "events": ".events:events",
    "dashboard": ".dashboard:dashboard",
    "demo": ".demo:demo",
    "protocol-demo": ".protocol_demo:protocol_demo",
    "interop": ".interop:interop",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
