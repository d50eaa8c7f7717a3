"""``celeriac dlq``: look at dead-lettered messages with their reasons, replay them, purge them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from celeriac.protocol import WireMessage
from celeriac.transports import REJECT_REASON_HEADER, Delivery, Transport, dead_letter_queue

from ..app import App
from .loading import app_option, broker_option, load_app

__all__ = ["dlq"]


def message_id(delivery: Delivery) -> str:
    """The task id, or for bytes that were never a readable message, a digest of them."""
    m = delivery.message
    if m is not None and isinstance(m.headers.get("id"), str):
        return str(m.headers["id"])
    body = m.body if m is not None else (delivery.raw or b"")
    return "raw-" + hashlib.sha256(body).hexdigest()[:16]


def _reason(delivery: Delivery) -> str:
    if delivery.message is None:
        return f"unreadable envelope: {delivery.error}"
    return str(delivery.message.headers.get(REJECT_REASON_HEADER, "?"))


@contextmanager
def _held(app: App, queue: str, limit: int, wait: float) -> Iterator[tuple[Any, list[Delivery]]]:
    """Up to ``limit`` dead letters of ``queue``, held; whatever is left unsettled at the end goes
    back to the dead-letter queue untouched."""
    transport = app.producer()
    dead = dead_letter_queue(queue)
    app.declare(queue)
    with transport.consumer([dead], prefetch=max(limit, 1)) as consumer:
        held: list[Delivery] = []
        while len(held) < limit:
            got = consumer.fetch(limit - len(held), timeout=wait if not held else min(wait, 0.5))
            if not got:
                break
            held.extend(got)
        settled: set[int] = set()
        try:
            yield (consumer, settled), held
        finally:
            for delivery in held:
                if id(delivery) not in settled:
                    consumer.requeue(delivery)


@click.group()
def dlq() -> None:
    """Dead-lettered messages: what was rejected, why, and sending it back after a fix.

    \b
    Examples:
        celeriac dlq list celery -A proj.tasks:app
        celeriac dlq show celery 5b1c0c1e-... -A proj.tasks:app
        celeriac dlq replay celery --all -A proj.tasks:app
        celeriac dlq purge celery -f
    """


_common = [
    click.argument("queue"),
    app_option,
    broker_option,
    click.option("-n", "--limit", default=100, show_default=True, help="Most messages to read."),
    click.option(
        "--wait", default=2.0, show_default=True, help="Seconds to wait for the first message."
    ),
]


def _options(f: Any) -> Any:
    for option in reversed(_common):
        f = option(f)
    return f


@dlq.command("list")
@_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_(
    queue: str, app_spec: str | None, broker: str | None, limit: int, wait: float, as_json: bool
) -> None:
    """List the dead letters of QUEUE with their reasons (they stay where they are)."""
    app = load_app(app_spec, broker)
    with _held(app, queue, limit, wait) as (_, held):
        rows = [
            {
                "id": message_id(d),
                "task": (d.message.headers.get("task") if d.message else None),
                "reason": _reason(d),
                "bytes": len(d.message.body) if d.message else len(d.raw or b""),
            }
            for d in held
        ]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        table = Table(title=f"{len(rows)} dead letter(s) of {queue}")
        for column in ("id", "task", "reason", "bytes"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(str(row[c]) for c in ("id", "task", "reason", "bytes")))
        Console().print(table)
    app.close()


@dlq.command()
@_options
@click.argument("message")
def show(
    queue: str, app_spec: str | None, broker: str | None, limit: int, wait: float, message: str
) -> None:
    """Print one dead letter of QUEUE whole: reason, headers, properties, body."""
    app = load_app(app_spec, broker)
    with _held(app, queue, limit, wait) as (_, held):
        found = [d for d in held if message_id(d) == message]
        if not found:
            app.close()
            raise click.ClickException(f"no dead letter {message!r} among {len(held)} of {queue}")
        d = found[0]
        body = d.message.body if d.message else (d.raw or b"")
        shown = {
            "id": message,
            "reason": _reason(d),
            "headers": dict(d.message.headers) if d.message else {},
            "properties": dict(d.message.properties) if d.message else {},
            "content_type": d.message.content_type if d.message else None,
            "body": body.decode("utf-8", "backslashreplace"),
        }
    click.echo(json.dumps(shown, indent=2, default=str))
    app.close()


@dlq.command()
@_options
@click.argument("messages", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter read.")
def replay(
    queue: str,
    app_spec: str | None,
    broker: str | None,
    limit: int,
    wait: float,
    messages: tuple[str, ...],
    replay_all: bool,
) -> None:
    """Send dead letters back to QUEUE (without their reason), by id or --all.

    Bytes that never were a readable message stay where they are: replaying them would only
    dead-letter them again.
    """
    if not messages and not replay_all:
        raise click.UsageError("name the messages to replay, or pass --all")
    app = load_app(app_spec, broker)
    replayed = skipped = 0
    transport: Transport = app.producer()
    with _held(app, queue, limit, wait) as ((consumer, settled), held):
        for d in held:
            if not replay_all and message_id(d) not in messages:
                continue
            if d.message is None or d.message.content_type == "application/octet-stream":
                skipped += 1
                continue
            m = d.message
            headers = {k: v for k, v in m.headers.items() if k != REJECT_REASON_HEADER}
            fresh = WireMessage(m.body, m.content_type, m.content_encoding, headers, m.properties)
            transport.publish(queue, fresh)
            consumer.ack([d])
            settled.add(id(d))
            replayed += 1
    click.echo(f"replayed {replayed} message(s) to {queue}; {skipped} unreadable left in place")
    app.close()


@dlq.command("purge")
@click.argument("queue")
@app_option
@broker_option
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def purge_(queue: str, app_spec: str | None, broker: str | None, force: bool) -> None:
    """Delete every dead letter of QUEUE."""
    app = load_app(app_spec, broker)
    dead = dead_letter_queue(queue)
    if not force:
        click.confirm(f"Delete every message of {dead}?", abort=True)
    app.declare(queue)
    click.echo(f"purged {app.producer().purge(dead)} dead letter(s) of {queue}")
    app.close()
