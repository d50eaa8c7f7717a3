import os

from celery import Celery

app = Celery(
    "proj",
    broker=os.environ.get("COMPAT_BROKER_URL"),
    backend=os.environ.get("COMPAT_BACKEND_URL"),
    include=["proj.tasks"],
)
app.conf.update(
    task_default_queue=os.environ.get("COMPAT_QUEUE", "celery"),
    result_expires=3600,
)
