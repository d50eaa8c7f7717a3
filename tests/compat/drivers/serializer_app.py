"""Driver of the serializer_app layout (a serializer registered in Kombu's shape): prints what
it observed of messages and results sent with it."""

import json
import os

import redis
from proj import tasks

try:
    from celery import chord
except ImportError:
    from celeriac import chord

TIMEOUT = 60
store = redis.Redis.from_url(os.environ["COMPAT_BACKEND_URL"])
queue = os.environ["COMPAT_QUEUE"]

echoed = tasks.echo.delay([1, "two", {"k": None}])
value = echoed.get(timeout=TIMEOUT)
stored = store.get(f"celery-task-meta-{echoed.id}")
print(
    json.dumps(
        {
            "echo": value,
            "stored with it": stored.startswith(b"REV"),
            "chord": chord([tasks.echo.s(i) for i in range(3)], tasks.count.s())
            .delay()
            .get(timeout=TIMEOUT),
            "apply_async(serializer='json')": tasks.echo.apply_async((2,), serializer="json").get(
                timeout=TIMEOUT
            ),
        },
        sort_keys=True,
    )
)
