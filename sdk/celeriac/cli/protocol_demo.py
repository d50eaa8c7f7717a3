"""``celeriac protocol-demo``: one task call shown as it sits on each broker."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from celeriac.protocol import SPEC_VERSION, new_task_message
from celeriac.protocol.envelopes import amqp, json_envelope, kafka, redis, sqs

__all__ = ["protocol_demo"]


@click.command("protocol-demo")
@click.option("--task", default="tasks.add", show_default=True, help="Task name to encode.")
@click.option("--compression", type=click.Choice(["zlib", "bzip2", "lzma"]), default=None)
def protocol_demo(task: str, compression: str | None) -> None:
    """Encode one task call and show it as it sits on each broker, then decode it back.

    \b
    Example:
        celeriac protocol-demo --task tasks.add --compression zlib
    """
    console = Console()
    eta = datetime.now(UTC) + timedelta(seconds=30)
    msg = new_task_message(
        task, (2, 3), {"note": "héllo 🥕"}, eta=eta, priority=5, compression=compression
    )
    console.print(
        Panel.fit(
            f"[bold]{msg.task}[/]{msg.args!r} kwargs={dict(msg.kwargs)!r}\n"
            f"id {msg.id}  eta {eta.isoformat()}  priority 5",
            title=f"Celeriac protocol spec {SPEC_VERSION}: one task call",
        )
    )
    am = amqp.pack(msg)
    shown = {
        "AMQP 0-9-1 (RabbitMQ): body": am.body.decode("utf-8", "replace")
        if compression is None
        else base64.b64encode(am.body).decode(),
        "AMQP 0-9-1 (RabbitMQ): header table": json.dumps(am.properties["headers"], indent=1),
        f"Redis: LPUSH {redis.list_key('celery', 5)!r}": redis.pack(msg).decode(),
        "Amazon SQS: MessageBody": sqs.pack(msg),
        "Kafka: record value (key = task id)": kafka.pack(msg).value.decode(),
    }
    for title, text in shown.items():
        lexer = "json" if text.lstrip().startswith(("{", "[")) else "text"
        console.print(Panel(Syntax(text, lexer, word_wrap=True), title=title, expand=False))
    table = Table(title="Decoded back from each envelope")
    for column in ("envelope", "task", "args", "kwargs", "same message"):
        table.add_column(column)
    decoded = {
        "amqp": amqp.unpack(am.body, am.properties),
        "redis": redis.unpack(redis.pack(msg)),
        "sqs": sqs.unpack(sqs.pack(msg)),
        "kafka": kafka.unpack(kafka.pack(msg).value),
        "zookeeper/sqlite": json_envelope.unpack(json_envelope.pack(msg)),
    }
    for name, got in decoded.items():
        same = got.replace(properties=msg.properties) == msg
        table.add_row(
            name, got.task, repr(got.args), repr(dict(got.kwargs)), "yes" if same else "NO"
        )
    console.print(table)
