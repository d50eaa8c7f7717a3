"""The Celery side of the both-ways end-to-end suite (run under real Celery 5.7, never imported
by Celeriac). ``tests/interop/e2e_tasks.py`` defines the same tasks, under the same names, for a
Celeriac worker, so either side can run what the other sends.

The broker comes from ``celery -b``; results go to the backend named by ``--result-backend``.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("celeriac-e2e", set_as_current=True)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_default_queue=os.environ.get("CELERIAC_E2E_QUEUE", "celery"),
)


@app.task(name="e2e.add")
def add(x, y):
    return x + y


@app.task(name="e2e.tsum")
def tsum(xs):
    return sum(xs)


@app.task(name="e2e.fail")
def fail(msg):
    raise ValueError(msg)


@app.task(name="e2e.flaky", bind=True, max_retries=5)
def flaky(self, redis_url, key, failures):
    # The attempt count lives in Redis so that it is shared by whichever worker runs the retry.
    attempt = redis.Redis.from_url(redis_url).incr(key)
    if attempt <= failures:
        raise self.retry(exc=RuntimeError(f"attempt {attempt}"), countdown=0.1)
    return attempt
