"""``celeriac call``, ``celeriac result``, ``celeriac purge``."""

from __future__ import annotations

import json
from typing import Any

import click

from ..result import AsyncResult
from .loading import app_option, broker_option, load_app

__all__ = ["call", "purge", "result"]


def _json(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from exc


@click.command()
@click.argument("task")
@app_option
@broker_option
@click.option("--args", "args_json", help="Positional arguments as a JSON list.")
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--countdown", type=float, help="Seconds to wait before it may run.")
@click.option("--queue", help="Queue to send to.")
@click.option(
    "--wait",
    "wait_s",
    type=float,
    is_flag=False,
    flag_value=30.0,
    default=None,
    help="Wait for the result (seconds, default 30).",
)
def call(
    task: str,
    app_spec: str | None,
    broker: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    countdown: float | None,
    queue: str | None,
    wait_s: float | None,
) -> None:
    """Send a task call by name and print its id (and, with --wait, its result).

    \b
    Example:
        celeriac call proj.add --args '[2, 3]' -A proj.tasks:app --wait
    """
    app = load_app(app_spec, broker)
    args = _json(args_json, "--args") or []
    kwargs = _json(kwargs_json, "--kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise click.BadParameter("--args takes a JSON list and --kwargs a JSON object")
    options: dict[str, Any] = {}
    if countdown is not None:
        options["countdown"] = countdown
    sent = app.send_task(task, args, kwargs, queue=queue, **options)
    click.echo(sent.id)
    if wait_s is not None:
        click.echo(json.dumps(sent.get(timeout=wait_s), default=str))
    app.close()


@click.command()
@click.argument("task_id")
@app_option
def result(task_id: str, app_spec: str | None) -> None:
    """Print a task's state and result."""
    app = load_app(app_spec)
    r: AsyncResult[Any] = app.AsyncResult(task_id)
    click.echo(f"{r.state}: {json.dumps(r.info, default=repr)}")
    app.close()


@click.command()
@app_option
@broker_option
@click.option("-Q", "--queues", help="Comma-separated queues (default: the app's default queue).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def purge(app_spec: str | None, broker: str | None, queues: str | None, force: bool) -> None:
    """Delete every waiting message of the queues."""
    app = load_app(app_spec, broker)
    names = queues.split(",") if queues else [app.conf.task_default_queue]
    if not force:
        click.confirm(f"Delete every waiting message of {', '.join(names)}?", abort=True)
    transport = app.producer()
    total = 0
    for name in names:
        app.declare(name)
        total += transport.purge(name)
    click.echo(f"purged {total} message(s) from {', '.join(names)}")
    app.close()
