"""``celeriac inspect``, ``celeriac control`` and ``celeriac status``: Celery's remote control,
against Celeriac and Celery workers alike."""

from __future__ import annotations

import json
import signal as signal_module
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .loading import app_option, broker_option, load_app

__all__ = ["control", "inspect", "status"]

INSPECT_METHODS = (
    "ping",
    "stats",
    "active",
    "reserved",
    "scheduled",
    "registered",
    "active_queues",
    "revoked",
    "query_task",
    "conf",
    "report",
    "clock",
    "memsample",
    "memdump",
    "objgraph",
)
CONTROL_METHODS = (
    "revoke",
    "terminate",
    "rate_limit",
    "time_limit",
    "add_consumer",
    "cancel_consumer",
    "pool_grow",
    "pool_shrink",
    "shutdown",
    "enable_events",
    "disable_events",
    "heartbeat",
    "autoscale",
    "pool_restart",
    "election",
    "revoke_by_stamped_headers",
)

_destination = click.option(
    "-d", "--destination", help="Comma-separated node names (default: every worker)."
)
_timeout = click.option(
    "-t", "--timeout", type=float, default=1.0, show_default=True, help="Seconds to wait."
)
_json = click.option("-j", "--json", "as_json", is_flag=True, help="Print the replies as JSON.")


def _nodes(destination: str | None) -> list[str] | None:
    return [d.strip() for d in destination.split(",") if d.strip()] if destination else None


def _show(replies: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(replies, indent=2, default=str))
        return
    if not replies:
        raise click.ClickException("no worker replied (is one running, on this broker?)")
    table = Table(title=title)
    table.add_column("node")
    table.add_column("reply", overflow="fold")
    for node, reply in sorted(replies.items()):
        text = reply if isinstance(reply, str) else json.dumps(reply, indent=1, default=str)
        table.add_row(node, text)
    Console().print(table)


def _is_signal(word: str) -> bool:
    upper = word.upper()
    return hasattr(signal_module.Signals, upper if upper.startswith("SIG") else f"SIG{upper}")


def _arguments(method: str, args: tuple[str, ...]) -> dict[str, Any]:
    """Celery's positional arguments for each command."""

    def need(count: int, names: str) -> None:
        if len(args) < count:
            raise click.UsageError(f"{method} takes: {names}")

    if method == "revoke":
        need(1, "TASK_ID [TASK_ID ...]")
        return {"task_id": list(args), "terminate": False}
    if method == "terminate":
        # Celery's order is SIGNAL TASK_ID...; a first word that is no signal name is a task
        # id, and SIGTERM is sent (Celery's workers require the signal argument).
        need(1, "[SIGNAL] TASK_ID [TASK_ID ...]")
        signal, ids = ("SIGTERM", list(args))
        if len(args) > 1 and _is_signal(args[0]):
            signal, ids = args[0], list(args[1:])
        return {"signal": signal, "task_id": ids}
    if method == "autoscale":
        need(1, "MAX [MIN]")
        return {"max": int(args[0]), "min": int(args[1]) if len(args) > 1 else 1}
    if method == "revoke_by_stamped_headers":
        need(1, "KEY=VALUE [KEY=VALUE ...]")
        return {"headers": dict(a.split("=", 1) for a in args if "=" in a)}
    if method == "rate_limit":
        need(2, "TASK_NAME RATE (for example 10/s, or 0 to lift it)")
        return {"task_name": args[0], "rate_limit": None if args[1] in ("0", "none") else args[1]}
    if method == "time_limit":
        need(2, "TASK_NAME SOFT [HARD]")
        hard = float(args[2]) if len(args) > 2 else None
        return {"task_name": args[0], "soft": float(args[1]), "hard": hard}
    if method in ("add_consumer", "cancel_consumer"):
        need(1, "QUEUE")
        return {"queue": args[0]}
    if method in ("pool_grow", "pool_shrink"):
        return {"n": int(args[0]) if args else 1}
    if method == "query_task":
        need(1, "TASK_ID [TASK_ID ...]")
        return {"ids": list(args)}
    return {}


def _ask(
    verb: str,
    method: str,
    args: tuple[str, ...],
    app_spec: str | None,
    broker: str | None,
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Send one command, gather the replies, print them."""
    app = load_app(app_spec, broker)
    try:
        nodes = _nodes(destination)
        replies = app.control.call(
            method,
            _arguments(method, args),
            destination=nodes,
            timeout=timeout,
            limit=len(nodes) if nodes else None,
        )
    finally:
        app.close()
    _show(replies, as_json, f"{verb} {method}: {len(replies)} node(s)")


@click.command()
@click.argument("method", type=click.Choice(INSPECT_METHODS))
@click.argument("args", nargs=-1)
@app_option
@broker_option
@_destination
@_timeout
@_json
def inspect(
    method: str,
    args: tuple[str, ...],
    app_spec: str | None,
    broker: str | None,
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Ask workers (Celeriac or Celery) what they are doing.

    \b
    Examples:
        celeriac inspect ping -b redis://localhost:6379/0
        celeriac inspect active -A proj.tasks:app
        celeriac inspect stats -d celery@host1 --json
        celeriac inspect query_task 5b1c0c1e-...
    """
    _ask("inspect", method, args, app_spec, broker, destination, timeout, as_json)


@click.command()
@click.argument("method", type=click.Choice(CONTROL_METHODS))
@click.argument("args", nargs=-1)
@app_option
@broker_option
@_destination
@_timeout
@_json
def control(
    method: str,
    args: tuple[str, ...],
    app_spec: str | None,
    broker: str | None,
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Tell workers (Celeriac or Celery) to change what they do; prints their replies.

    \b
    Examples:
        celeriac control rate_limit proj.add 10/s -A proj.tasks:app
        celeriac control revoke 5b1c0c1e-... ; celeriac control terminate 5b1c0c1e-...
        celeriac control add_consumer urgent -d celery@host1
        celeriac control pool_grow 4
        celeriac control shutdown -d celery@host1
    """
    _ask("control", method, args, app_spec, broker, destination, timeout, as_json)


@click.command()
@app_option
@broker_option
@_timeout
def status(app_spec: str | None, broker: str | None, timeout: float) -> None:
    """The workers that answer, with their pool, tasks run and tasks running now.

    \b
    Example:
        celeriac status -b amqp://guest:guest@localhost//
    """
    app = load_app(app_spec, broker)
    try:
        stats = app.control.call("stats", timeout=timeout)
        active = app.control.call("active", timeout=timeout, limit=len(stats) or None)
    finally:
        app.close()
    if not stats:
        raise click.ClickException("no worker replied (is one running, on this broker?)")
    table = Table(title=f"{len(stats)} node(s) online")
    for column in ("node", "pool", "concurrency", "processed", "running", "uptime (s)"):
        table.add_column(column)
    for node, s in sorted(stats.items()):
        s = s if isinstance(s, dict) else {}
        pool = s.get("pool") or {}
        done = sum((s.get("total") or {}).values())
        running = active.get(node)
        table.add_row(
            node,
            str(pool.get("implementation", "?")),
            str(pool.get("max-concurrency", "?")),
            str(done),
            str(len(running)) if isinstance(running, list) else "?",
            str(s.get("uptime", "?")),
        )
    Console().print(table)
