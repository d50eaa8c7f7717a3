import json
import os

from celeriac import Celery
from celeriac.serialization import register


def dumps(value):
    return "REV" + json.dumps(value)[::-1]


def loads(text):
    if isinstance(text, bytes):  # what Kombu hands a decoder (a message body, a stored result)
        text = text.decode()
    if not text.startswith("REV"):
        raise ValueError("not reversed JSON")
    return json.loads(text[3:][::-1])


register("reversed-json", dumps, loads, "application/x-reversed-json", "utf-8")

app = Celery(
    "proj",
    broker=os.environ.get("COMPAT_BROKER_URL"),
    backend=os.environ.get("COMPAT_BACKEND_URL"),
    include=["proj.tasks"],
)
app.conf.update(
    task_default_queue=os.environ.get("COMPAT_QUEUE", "celery"),
    task_serializer="reversed-json",
    result_serializer="reversed-json",
    accept_content=["json", "reversed-json"],
    result_accept_content=["json", "reversed-json"],
)
