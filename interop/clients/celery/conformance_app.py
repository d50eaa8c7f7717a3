"""Real Celery 5.7 with the conformance tasks (run by the Celery venv; see interop/celery_env.py).

celery -A conformance_app worker ...     # broker/backend from CELERY_BROKER_URL / _RESULT_BACKEND
"""

from __future__ import annotations

import os
import time

from celery import Celery


def make_app(broker: str, backend: str | None) -> Celery:
    app = Celery("celeriac-conformance", set_as_current=False)
    app.conf.update(
        broker_url=broker,
        result_backend=backend,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
    )
    if broker.startswith("sqs://"):
        app.conf.broker_transport_options = {
            "region": os.environ.get("CELERIAC_SQS_REGION", "elasticmq"),
            "is_secure": False,
            "wait_time_seconds": 1,
            "polling_interval": 0.2,
            "visibility_timeout": 60,
        }

    @app.task(name="interop.add")
    def add(x, y):
        return x + y

    @app.task(name="interop.echo")
    def echo(tag, value):
        return value

    @app.task(name="interop.fail")
    def fail(message):
        raise ValueError(message)

    @app.task(name="interop.sleep")
    def sleep(seconds):
        time.sleep(seconds)
        return seconds

    @app.task(name="interop.xsum")
    def xsum(values):
        return sum(values)

    return app


app = make_app(
    os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("CELERY_RESULT_BACKEND") or None,
)
