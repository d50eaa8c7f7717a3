"""Driver of the include_pkg layout: run with either copy on sys.path; prints observations."""

import json

from proj import tasks
from proj.billing import tasks as billing
from proj.celery import app

# The two copies run this file as it is: whichever package is installed provides the result API.
try:
    from celery import chain, group, signature
    from celery.result import AsyncResult, ResultSet
except ImportError:
    from celeriac import chain, group, signature
    from celeriac.result import AsyncResult, ResultSet

TIMEOUT = 60


def _timeout_type():
    try:
        tasks.add.apply_async((1, 1), countdown=30).get(timeout=0.2)
    except Exception as exc:
        return [type(exc).__module__.split(".")[-1], type(exc).__name__]
    return None


done = tasks.add.delay(1, 1)
done.get(timeout=TIMEOUT)
print(
    json.dumps(
        {
            "names": sorted(n for n in app.tasks if not n.startswith("celery.")),
            "task_names": [tasks.add.name, billing.add.name, tasks.renamed.name],
            "add": tasks.add.delay(2, 3).get(timeout=TIMEOUT),
            "billing.add": billing.add.delay(2, 3).get(timeout=TIMEOUT),
            "send_task mul": app.send_task("proj.tasks.mul", (3, 4)).get(timeout=TIMEOUT),
            "send_task renamed": app.send_task("proj.custom_name").get(timeout=TIMEOUT),
            "whoami": tasks.whoami.delay().get(timeout=TIMEOUT),
            "request": tasks.request_fields.apply_async(
                (1,), {"key": "v"}, expires=600, time_limit=30, soft_time_limit=20
            ).get(timeout=TIMEOUT),
            "state": done.state,
            "local call": tasks.mul(6, 7),
            "get() inside a task": tasks.waits_inside.delay().get(timeout=TIMEOUT),
            "timeout type": _timeout_type(),
            "date_done set": done.date_done is not None,
            "AsyncResult(id)": AsyncResult(done.id).get(timeout=TIMEOUT),
            "sig()": tasks.add.s(2, 2)(),
            "sig.apply()": tasks.add.s(1, 1).apply().get(),
            "signature(name, options)": signature("proj.tasks.add", (1, 2), countdown=0.1)
            .delay()
            .get(timeout=TIMEOUT),
            "group | task": (group(tasks.add.s(i, i) for i in range(3)) | tasks.xsum.s())
            .delay()
            .get(timeout=TIMEOUT),
            "chain(group, task)": chain(group(tasks.add.s(1, 1), tasks.add.s(2, 2)), tasks.xsum.s())
            .delay()
            .get(timeout=TIMEOUT),
            "group | task | task": (
                group(tasks.add.s(1, 1), tasks.add.s(2, 2)) | tasks.xsum.s() | tasks.add.s(10)
            )
            .delay()
            .get(timeout=TIMEOUT),
            "chain": (tasks.add.s(1, 1) | tasks.mul.s(5) | tasks.add.s(1))
            .delay()
            .get(timeout=TIMEOUT),
            "ResultSet": ResultSet([tasks.add.delay(i, i) for i in range(3)]).get(timeout=TIMEOUT),
        },
        sort_keys=True,
    )
)
