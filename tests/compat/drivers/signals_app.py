"""Driver of the signals_app layout: four calls (a success, a failure with a new-style
errback, a retry then success, a success whose on_success hook raises), one after another;
the worker's signal receivers and the tasks' hooks write each call and its arguments to a
ledger, which this prints in order, then what the last call's result says."""

import json
import os
import time

from proj import tasks

TIMEOUT = 60
ledger = os.environ["COMPAT_LEDGER"]
tasks.add.delay(2, 3).get(timeout=TIMEOUT)
tasks.boom.apply_async(link_error=tasks.on_error.s()).get(timeout=TIMEOUT, propagate=False)
tasks.again.delay().get(timeout=TIMEOUT)
fragile = tasks.fragile.delay()
kept = [fragile.get(timeout=TIMEOUT), fragile.state]
deadline = time.monotonic() + 10
lines = []
while time.monotonic() < deadline:
    with open(ledger) as f:
        lines = [json.loads(line) for line in f]
    if len(lines) >= 25:
        break
    time.sleep(0.1)  # the worker appends its last postrun after the result is stored
print(json.dumps([*lines, ["fragile", kept]]))
