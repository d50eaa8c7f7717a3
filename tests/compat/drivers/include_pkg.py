"""Driver of the include_pkg layout: run with either copy on sys.path; prints observations."""

import json

from proj import tasks
from proj.billing import tasks as billing
from proj.celery import app

TIMEOUT = 60
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
            "state": done.state,
            "local call": tasks.mul(6, 7),
        },
        sort_keys=True,
    )
)
