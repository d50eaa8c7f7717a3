"""Flower's own Celery app (run under the Flower venv, never imported by Celeriac): the task
names the Celeriac worker runs, declared as a Celery user declares them for ``flower -A``, so
Flower's per-task actions (rate limit, time limits) know them."""

from celery import Celery

app = Celery("flower_watching")


@app.task(name="flower.add")
def add(x, y):
    raise NotImplementedError("runs on the Celeriac worker")


@app.task(name="flower.wait")
def wait(seconds):
    raise NotImplementedError("runs on the Celeriac worker")
