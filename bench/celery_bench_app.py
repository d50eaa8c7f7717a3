"""The Celery app a real Celery worker runs for bench/sdk.py (imported by ``celery -A``)."""

import logging

from celery import Celery
from celery.signals import after_setup_logger

app = Celery("bench")


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
