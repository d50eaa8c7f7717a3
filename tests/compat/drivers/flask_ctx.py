"""Driver of the flask_ctx layout: a task base class that runs each task in the web app's
context (Flask's ``FlaskTask`` pattern), shared tasks, and ``task_ignore_result``."""

import json

from flaskr import tasks
from make_celery import celery_app

TIMEOUT = 60
ignored = tasks.fire_and_forget.delay(1)
print(
    json.dumps(
        {
            "names": sorted(n for n in celery_app.tasks if not n.startswith("celery.")),
            "made by app.Task": isinstance(celery_app.tasks[tasks.add.name], celery_app.Task),
            "add": tasks.add.delay(2, 3).get(timeout=TIMEOUT),
            "context_of": tasks.context_of.delay().get(timeout=TIMEOUT),
            "local call": tasks.add(1, 2),
            "after a worker ran it": tasks.context_of.apply_async(countdown=0.1).get(
                timeout=TIMEOUT
            ),
            "ignored result state": ignored.state,
        },
        sort_keys=True,
    )
)
