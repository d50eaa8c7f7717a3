"""``celeriac demo``: a worker and a client on the embedded SQLite default, no server needed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..canvas import chord
from ..examples.demo import make_app
from ..worker import run_worker, stop_worker

__all__ = ["demo"]


@click.command()
@click.option("-b", "--broker", help="Broker URL (default: a SQLite file in a temporary folder).")
@click.option("--backend", help="Result backend URL (default: a SQLite file beside it).")
@click.option("-n", "--count", default=50, show_default=True, help="How many add() calls.")
def demo(broker: str | None, backend: str | None, count: int) -> None:
    """Start a worker and send it a small workload: tasks, a retry, a chain, a chord, an async
    task and a failure; show what came back.

    \b
    Examples:
        celeriac demo
        celeriac demo --broker redis://127.0.0.1:6379/0 --backend sqlite:///results.db
    """
    console = Console()
    with tempfile.TemporaryDirectory(prefix="celeriac-demo-") as tmp:
        broker = broker or f"sqlite:///{Path(tmp) / 'broker.db'}"
        backend = backend or f"sqlite:///{Path(tmp) / 'results.db'}"
        app = make_app(broker, backend)
        t = app.tasks
        console.print(f"[bold]broker[/] {broker}\n[bold]results[/] {backend}")
        worker = run_worker(app, concurrency=4)
        rows: list[tuple[str, str, str]] = []
        try:
            start = time.perf_counter()
            sent = [t["demo.add"].delay(i, i) for i in range(count)]
            with Progress(console=console, transient=True) as progress:
                bar = progress.add_task(f"{count} add() calls", total=count)
                for r in sent:
                    r.get(timeout=60)
                    progress.advance(bar)
            elapsed = time.perf_counter() - start
            rows.append(
                (
                    f"{count} x add(i, i)",
                    f"sum {sum(r.get() for r in sent)}",
                    f"{count / elapsed:,.0f} tasks/s round trip",
                )
            )
            rows += _canvas_rows(t)
        finally:
            stop_worker(worker)
            app.close()
        table = Table(title="celeriac demo: what the worker did")
        for column in ("call", "result", "note"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print(f"worker processed {worker.processed} messages; stopped warm.")


def _timed(fn: Any) -> tuple[Any, str]:
    start = time.perf_counter()
    value = fn()
    return value, f"{(time.perf_counter() - start) * 1000:.0f} ms"


def _canvas_rows(t: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    value, took = _timed(lambda: t["demo.flaky"].delay("demo").get(timeout=30))
    rows.append(("flaky('demo')", str(value), f"retried once; {took}"))
    chained = t["demo.add"].s(1, 2) | t["demo.multiply"].s(10) | t["demo.add"].s(5)
    value, took = _timed(lambda: chained.apply_async().get(timeout=30))
    rows.append(("add(1, 2) | multiply(10) | add(5)", str(value), f"a chain; {took}"))
    header = [t["demo.add"].s(i, i) for i in range(1, 6)]
    value, took = _timed(lambda: chord(header, t["demo.tsum"].s()).apply_async().get(timeout=30))
    rows.append(("chord(add(i, i) for i in 1..5) -> tsum", str(value), f"a chord; {took}"))
    pages = [t["demo.fetch"].delay(f"https://example.test/{i}") for i in range(4)]
    value, took = _timed(lambda: [p.get(timeout=30)["status"] for p in pages])
    rows.append(("4 x async fetch(url)", str(value), f"async def tasks; {took}"))
    failed = t["demo.fail"].delay("this one fails on purpose")
    try:
        failed.get(timeout=30)
        rows.append(("fail(...)", "no error?", "unexpected"))
    except ValueError as exc:
        rows.append(("fail(...)", f"ValueError: {exc}", "re-raised on get() as the same type"))
    return rows
