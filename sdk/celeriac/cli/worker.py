"""``celeriac worker``."""

from __future__ import annotations

import contextlib
import gc
import logging
from typing import TYPE_CHECKING

import click

from .. import signals
from ..worker import Worker
from ..worker.arenas import limit_malloc_arenas
from ..worker.nodename import node_name
from .loading import app_option, broker_option, load_app
from .logs import redirected_stdouts, setup_logging

if TYPE_CHECKING:
    from ..app import App

__all__ = ["worker"]


@click.command()
@app_option
@broker_option
@click.option("-c", "--concurrency", type=int, help="Tasks run at once (threads).")
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["prefork", "threads", "asyncio", "solo"]),
    help="Execution pool.",
)
@click.option(
    "--autoscale",
    help="MAX,MIN: the pool grows to MAX tasks at once under load and shrinks back to MIN.",
)
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(min=1),
    help="Prefork: a child process is replaced after this many tasks (worker_max_tasks_per_child).",
)
@click.option(
    "--max-memory-per-child",
    type=click.IntRange(min=1),
    help="Prefork: a child whose resident memory passes this many KiB is replaced after its "
    "task (worker_max_memory_per_child).",
)
@click.option("-Q", "--queues", help="Comma-separated queues to consume.")
@click.option(
    "-n",
    "--hostname",
    help="Node name, as name@host; %h (host), %n (host's name), %d (domain), %i expand.",
)
@click.option(
    "-B", "--beat", "with_beat", is_flag=True, help="Also run a beat (periodic tasks) inside."
)
@click.option(
    "-E", "--task-events", "task_events", is_flag=True, help="Send task events (celeriac events)."
)
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def worker(
    app_spec: str | None,
    broker: str | None,
    concurrency: int | None,
    pool: str | None,
    autoscale: str | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    queues: str | None,
    hostname: str | None,
    with_beat: bool,
    task_events: bool,
    loglevel: str,
) -> None:
    """Start a worker: consume queues and run their tasks until SIGTERM (warm) or a second one.

    \b
    Example:
        celeriac worker -A proj.tasks:app -c 8 -Q default,urgent -l info
        celeriac worker -A proj.tasks:app --beat        # and send periodic tasks
    """
    try:
        node = node_name(hostname)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-n/--hostname") from None
    limit_malloc_arenas()  # before any thread starts
    # The app first, so the receivers its modules connect (setup_logging, celeryd_init, ...)
    # are there when those signals are sent, as in Celery.
    app = load_app(app_spec, broker)
    if task_events:
        app.conf.update(worker_send_task_events=True)
    if max_tasks_per_child is not None:
        app.conf.update(worker_max_tasks_per_child=max_tasks_per_child)
    if max_memory_per_child is not None:
        app.conf.update(worker_max_memory_per_child=max_memory_per_child)
    if (pool or app.conf.worker_pool) != "prefork":
        # Celery's limits replace child processes: other pools have none to replace.
        if max_tasks_per_child is not None or max_memory_per_child is not None:
            raise click.BadParameter(
                "--max-tasks-per-child and --max-memory-per-child need the prefork pool",
                param_hint="-P/--pool",
            )
        if app.conf.worker_max_tasks_per_child or app.conf.worker_max_memory_per_child:
            logging.getLogger("celeriac.worker").warning(
                "worker_max_tasks_per_child and worker_max_memory_per_child apply to the "
                "prefork pool only; the %s pool ignores them",
                pool or app.conf.worker_pool,
            )
    try:
        w = Worker(
            app,
            queues=queues.split(",") if queues else None,
            concurrency=concurrency,
            pool=pool,
            hostname=node,
            autoscale=autoscale,
        )
    except ValueError as exc:
        if autoscale is None or "autoscale" not in str(exc).lower():
            raise
        raise click.BadParameter(str(exc), param_hint="--autoscale") from None
    options = {"queues": queues, "concurrency": concurrency, "pool": pool, "loglevel": loglevel}
    signals.celeryd_init.send(node, instance=w, conf=app.conf, options=options)
    signals.worker_init.send(w)
    ours = setup_logging(loglevel, app.conf)
    signals.celeryd_after_setup.send(node, instance=w, conf=app.conf)
    w.install_signal_handlers()
    # What start-up built (modules, the app, its tasks) lives as long as the process: kept out
    # of the collector's way, each full collection walks only what came after (and prefork's
    # children do not copy the pages a collection would touch).
    gc.collect()
    gc.freeze()
    # Logging an app set up itself (setup_logging receivers) keeps stdout, as in Celery.
    with redirected_stdouts(app.conf) if ours else contextlib.nullcontext():
        _run(app, w, with_beat)


def _run(app: App, w: Worker, with_beat: bool) -> None:
    if not with_beat:
        w.run()
        return
    import threading

    from .beat import start_beat

    scheduler = start_beat(app)
    signals.beat_embedded_init.send(scheduler)
    thread = threading.Thread(target=scheduler.run, name="celeriac-beat", daemon=True)
    thread.start()
    try:
        w.run()
    finally:
        scheduler.stop()
        thread.join(app.conf.beat_lease_seconds)
