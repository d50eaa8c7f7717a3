"""An app for worker-process tests: settings come from CELERIAC_* variables the test sets."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celeriac import App

app = App("crashy")


@app.task
def slow_mark(name: str) -> str:
    """Append a start line, work for a while, append a done line (a ledger the test reads)."""
    ledger = Path(os.environ["CRASHY_LEDGER"])
    with ledger.open("a") as f:
        f.write(f"start {name} {os.getpid()}\n")
    time.sleep(float(os.environ.get("CRASHY_SECONDS", "3")))
    with ledger.open("a") as f:
        f.write(f"done {name} {os.getpid()}\n")
    return name
