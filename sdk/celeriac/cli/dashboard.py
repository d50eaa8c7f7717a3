"""``celeriac dashboard``: a live web page of workers, tasks and queues, with actions."""

from __future__ import annotations

import click

from celeriac.transports import redact_url

from .loading import app_option, load_app

__all__ = ["dashboard"]


@click.command()
@app_option
@click.option("-b", "--broker", help="Broker URL (overrides the app's).")
@click.option(
    "--backend",
    help="Result backend URL: where 'retry' reads the task's name and arguments "
    "(workers need result_extended=True).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5555, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--token",
    envvar="CELERIAC_DASHBOARD_TOKEN",
    help="Require this token for data and actions (better: set CELERIAC_DASHBOARD_TOKEN).",
)
@click.option("-Q", "--queues", help="Comma-separated queues to measure, besides those seen.")
@click.option(
    "--max-tasks", default=10_000, show_default=True, type=int, help="Tasks kept in memory."
)
@click.option(
    "--enable-events",
    is_flag=True,
    help="Switch task events on in every worker (now and each minute), as Flower does.",
)
def dashboard(
    app_spec: str | None,
    broker: str | None,
    backend: str | None,
    host: str,
    port: int,
    token: str | None,
    queues: str | None,
    max_tasks: int,
    enable_events: bool,
) -> None:
    """Serve a live dashboard: workers, tasks (search, filter), queues, throughput and latency
    charts, and actions (revoke, terminate, rate limit, shut a worker down, retry a failure).

    It reads the events workers send when started with -E (Celery's workers too). Open
    http://127.0.0.1:5555/ in a browser; with a token, the page asks for it.

    \b
    Examples:
        celeriac dashboard -b redis://localhost:6379/0
        CELERIAC_DASHBOARD_TOKEN=s3cret celeriac dashboard -A proj.tasks:app --host 0.0.0.0
    """
    from ..dashboard import Dashboard, serve
    from ..dashboard.web import LOOPBACK_HOSTS

    if app_spec is None:
        # No app: no result backend unless named (the default would be a SQLite file here).
        from ..app import App

        app = App("dashboard", broker=broker, backend=backend or "")
    else:
        app = load_app(app_spec, broker)
        if backend:
            app.conf = app.conf.replace(result_backend=backend)
    if host not in LOOPBACK_HOSTS and not token:
        click.echo(
            f"warning: listening on {host} without a token: anyone who reaches it can revoke "
            "tasks and shut workers down (set CELERIAC_DASHBOARD_TOKEN)",
            err=True,
        )
    board = Dashboard(
        app,
        queues=[q for q in (queues or "").split(",") if q],
        max_tasks=max_tasks,
        enable_events=enable_events,
    )
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"Celeriac dashboard on http://{shown}:{port}/ watching "
        f"{redact_url(app.conf.broker_url or '')}" + (" (token required)" if token else "")
    )
    try:
        serve(board, host, port, token)
    finally:
        app.close()
