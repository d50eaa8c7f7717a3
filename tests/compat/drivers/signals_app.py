"""Driver of the signals_app layout: four calls (a success, a failure with a new-style
errback, a retry then success, a success whose on_success hook raises), one after another,
each once the run before it posted its task_postrun; the worker's signal receivers and the
tasks' hooks write each call and its arguments to a ledger, which this prints in order, then
what the last call's result says."""

import json
import os
import time

from proj import tasks

TIMEOUT = 60
ledger = os.environ["COMPAT_LEDGER"]


def settled(runs):
    """The ledger once ``runs`` runs posted their task_postrun (the worker writes its hooks'
    and signals' lines after it stored the result the driver waited for)."""
    deadline = time.monotonic() + 10
    lines = []
    while time.monotonic() < deadline:
        with open(ledger) as f:
            lines = [json.loads(line) for line in f]
        if sum(line[0] == "task_postrun" for line in lines) >= runs:
            break
        time.sleep(0.05)  # a file the worker appends to: nothing to block on
    return lines


tasks.add.delay(2, 3).get(timeout=TIMEOUT)
settled(1)
tasks.boom.apply_async(link_error=tasks.on_error.s()).get(timeout=TIMEOUT, propagate=False)
settled(2)
tasks.again.delay().get(timeout=TIMEOUT)
settled(4)  # the retried run and the one after it
fragile = tasks.fragile.delay()
kept = [fragile.get(timeout=TIMEOUT), fragile.state]
print(json.dumps([*settled(5), ["fragile", kept]]))
