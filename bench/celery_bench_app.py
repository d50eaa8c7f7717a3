"""The Celery app a real Celery worker runs for bench/sdk.py (imported by ``celery -A``)."""

import logging
import os
import time

from celery import Celery
from celery.signals import after_setup_logger

from bench.peers.done import count_done

app = Celery("bench")
if os.environ.get("BENCH_SQS_POLLING_INTERVAL"):
    # Kombu's SQS transport waits polling_interval (1 s) between receives even while the
    # queue is full; the benchmark gives Celery the tuned value its docs suggest.
    app.conf.broker_transport_options = {
        "polling_interval": float(os.environ["BENCH_SQS_POLLING_INTERVAL"])
    }


@after_setup_logger.connect
def quiet_per_task_logs(**kwargs):
    # Celeriac does not log each task by default either; keep the comparison fair.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.task(name="bench.noop", ignore_result=True)
def noop(*args):
    return None


@app.task(name="bench.add")
def add(x, y):
    return x + y


@app.task(name="bench.sleep_sync", ignore_result=True)
def sleep_sync(seconds: float, done: str = "") -> None:
    time.sleep(seconds)
    count_done(done)
