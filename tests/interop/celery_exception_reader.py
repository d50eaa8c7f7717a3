"""Run with the Celery venv's python: read results with real Celery 5.7, report their classes.

python celery_exception_reader.py BACKEND CASES_JSON TIMEOUT
CASES_JSON: [{"id": ..., "state": "FAILURE", "class": "NotRegistered"}, ...]. Prints one JSON
line per case: the state Celery read, the class it rebuilt, and whether ``isinstance`` holds
against ``celery.exceptions.<class>``.
"""

import json
import sys
import time

import celery.exceptions
from celery import Celery


def main() -> None:
    backend, cases, timeout = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
    app = Celery("celeriac-exception-reader", backend=backend)
    for case in cases:
        res = app.AsyncResult(case["id"])
        deadline = time.monotonic() + timeout
        while res.state != case["state"] and time.monotonic() < deadline:
            time.sleep(0.1)
        value = res.result
        want = getattr(celery.exceptions, case["class"])
        line = {
            "id": case["id"],
            "state": res.state,
            "class": f"{type(value).__module__}.{type(value).__qualname__}",
            "isinstance": isinstance(value, want),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
