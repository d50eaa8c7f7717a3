"""The Celery app the interop suite runs under real Celery 5.7 (never imported by Celeriac).

Run it with the Celery venv's python (``interop/celery_env.py``)::

    celery -A interop_app -b redis://127.0.0.1:6379/0 --result-backend redis://... worker ...

Tasks, all under the ``interop.`` names the vectors and the end-to-end tests use:

* ``interop.add(x, y)``  -> ``x + y``
* ``interop.echo(*a, **kw)`` -> ``{"args": [...], "kwargs": {...}}``
* ``interop.tsum(xs)`` -> ``sum(xs)`` (a chord body)
* ``interop.fail(msg)`` -> raises ``ValueError(msg)``

The module-level ``app`` is configured from the environment so one module serves every broker:

* ``CELERIAC_BROKER_URL`` / ``CELERIAC_RESULT_BACKEND`` (the CLI's ``-b`` and
  ``--result-backend`` win: they export ``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND``)
* ``CELERIAC_RESULT_EXTENDED=1`` stores extended result records (``result_extended``)
* ``CELERIAC_TASK_PROTOCOL`` (default 2)
* for ``sqs://`` brokers: ``CELERIAC_SQS_REGION`` (default ``us-east-1``); ``is_secure`` is
  off, so ``sqs://key:secret@127.0.0.1:9324//`` talks plain HTTP to a local ElasticMQ.

``make_app(...)`` builds further, independent instances (the capture makes one per broker).
"""

from __future__ import annotations

import os

from celery import Celery

TASK_NAMES = ("interop.add", "interop.echo", "interop.tsum", "interop.fail")


def add(x, y):
    return x + y


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def tsum(xs):
    return sum(xs)


def fail(msg):
    raise ValueError(msg)


def make_app(
    broker_url: str,
    backend_url: str | None = None,
    *,
    task_protocol: int = 2,
    result_extended: bool = False,
    sqs_region: str = "us-east-1",
) -> Celery:
    """A Celery app with the four ``interop.*`` tasks and JSON as the task serializer."""
    app = Celery("interop", set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        result_backend=backend_url,
        result_extended=result_extended,
        task_protocol=task_protocol,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json", "msgpack", "yaml"],
        result_accept_content=["json", "msgpack", "yaml"],
        enable_utc=True,
        timezone="UTC",
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
    )
    if broker_url.startswith("sqs://"):
        app.conf.broker_transport_options = {
            "region": sqs_region,
            "is_secure": False,
            "wait_time_seconds": 1,
            "polling_interval": 0.2,
            "visibility_timeout": 60,
        }
    for name, fun in zip(TASK_NAMES, (add, echo, tsum, fail), strict=True):
        app.task(name=name)(fun)
    return app


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


app = make_app(
    os.environ.get("CELERY_BROKER_URL")
    or os.environ.get("CELERIAC_BROKER_URL")
    or "redis://127.0.0.1:6379/0",
    os.environ.get("CELERY_RESULT_BACKEND") or os.environ.get("CELERIAC_RESULT_BACKEND") or None,
    task_protocol=int(os.environ.get("CELERIAC_TASK_PROTOCOL", "2")),
    result_extended=_env_flag("CELERIAC_RESULT_EXTENDED"),
    sqs_region=os.environ.get("CELERIAC_SQS_REGION", "us-east-1"),
)
