"""Driver of the django_proj layout: a Django project whose celery.py reads CELERY_ settings
and autodiscovers its apps' tasks modules; the client runs inside Django, as a view would."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

import django

django.setup()

from mysite import celery_app  # noqa: E402
from polls import tasks  # noqa: E402

TIMEOUT = 60
extended = tasks.add.delay(4, 5)
extended.get(timeout=TIMEOUT)
print(
    json.dumps(
        {
            "broker": celery_app.conf.broker_url == os.environ["COMPAT_BROKER_URL"],
            "queue": celery_app.conf.task_default_queue == os.environ["COMPAT_QUEUE"],
            "names": sorted(n for n in celery_app.tasks if not n.startswith("celery.")),
            "add": tasks.add.delay(2, 3).get(timeout=TIMEOUT),
            "setting in the worker": tasks.setting.delay("SECRET_KEY").get(timeout=TIMEOUT),
            "send_task": celery_app.send_task("polls.count_votes", ([1, 2, 3],)).get(
                timeout=TIMEOUT
            ),
            "by name": celery_app.send_task("polls.tasks.add", (5, 5)).get(timeout=TIMEOUT),
            "debug_task name": celery_app.tasks["mysite.celery.debug_task"].name,
            "result_extended": [extended.name, extended.args, extended.kwargs, extended.retries],
        },
        sort_keys=True,
    )
)
