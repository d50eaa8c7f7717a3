"""Driver of the signals_app layout: three calls (a success, a failure, a retry then success),
one after another; the worker's signal receivers write each signal and its arguments to a
ledger, which this prints in order."""

import json
import os
import time

from proj import tasks

TIMEOUT = 60
ledger = os.environ["COMPAT_LEDGER"]
tasks.add.delay(2, 3).get(timeout=TIMEOUT)
tasks.boom.delay().get(timeout=TIMEOUT, propagate=False)
tasks.again.delay().get(timeout=TIMEOUT)
deadline = time.monotonic() + 10
lines = []
while time.monotonic() < deadline:
    with open(ledger) as f:
        lines = [json.loads(line) for line in f]
    if len(lines) >= 12:
        break
    time.sleep(0.1)  # the worker appends its last postrun after the result is stored
print(json.dumps(lines))
