import os

from celery import Celery

queue = os.environ.get("COMPAT_QUEUE", "celery")

app = Celery(
    "proj",
    broker=os.environ.get("COMPAT_BROKER_URL"),
    backend=os.environ.get("COMPAT_BACKEND_URL"),
    include=["proj.tasks"],
)
app.conf.update(
    task_default_queue=queue,
    task_routes={"proj.tasks.cleanup": {"queue": f"{queue}.maint"}},
    beat_schedule={
        "report": {"task": "proj.tasks.report", "schedule": 1.0},
        "cleanup": {"task": "proj.tasks.cleanup", "schedule": 1.0},
        "entry option": {
            "task": "proj.tasks.record",
            "schedule": 1.0,
            "args": ["entry option"],
            "options": {"queue": f"{queue}.entry"},
        },
        "default": {"task": "proj.tasks.record", "schedule": 1.0, "args": ["default"]},
    },
)


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.add_periodic_task(
        1.0, sender.signature("proj.tasks.record", ("periodic task",)), name="added"
    )
