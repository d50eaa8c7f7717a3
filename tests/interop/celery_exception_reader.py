"""Run with the Celery venv's python: read results with real Celery 5.7, report their classes.

python celery_exception_reader.py BACKEND CASES_JSON
CASES_JSON: [{"id": ..., "state": "FAILURE", "class": "NotRegistered"}, ...]. Prints one JSON
line per case: the state Celery read, the class it rebuilt, and whether ``isinstance`` holds
against ``celery.exceptions.<class>``. The caller runs it once every record is stored: each is
read once, and a state other than the case's is reported, not waited out.
"""

import json
import sys

import celery.exceptions
from celery import Celery


def main() -> None:
    backend, cases = sys.argv[1], json.loads(sys.argv[2])
    app = Celery("celeriac-exception-reader", backend=backend)
    for case in cases:
        res = app.AsyncResult(case["id"])
        state, value = res.state, res.result
        want = getattr(celery.exceptions, case["class"])
        line = {
            "id": case["id"],
            "state": state,
            "class": f"{type(value).__module__}.{type(value).__qualname__}",
            "isinstance": isinstance(value, want),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
