"""Run with the Celery venv's python: send one task with real Celery 5.7, print the id or result.

python celery_client.py BROKER BACKEND QUEUE TASK ARGS_JSON send|wait
"""

import json
import sys

from celery import Celery


def main() -> None:
    broker, backend, queue, name, args, mode = sys.argv[1:7]
    app = Celery("celeriac-interop-client", broker=broker, backend=backend)
    result = app.send_task(name, args=json.loads(args), queue=queue)
    if mode == "wait":
        print(json.dumps({"id": result.id, "result": result.get(timeout=60)}))
    else:
        print(json.dumps({"id": result.id}))


if __name__ == "__main__":
    main()
