"""An app for beat process tests: settings from CELERIAC_* variables; one entry, every second,
whose task appends the tick it was sent for to the ledger file TICKER_LEDGER."""

from __future__ import annotations

import os
import time
from typing import Any

from celeriac import App

app = App("ticker")


@app.task(bind=True)
def record(self: Any) -> str:
    """Append ``<scheduled tick> <time run> <worker pid>`` to the ledger."""
    tick = self.request.headers["beat_tick"]
    with open(os.environ["TICKER_LEDGER"], "a") as ledger:
        ledger.write(f"{tick} {time.time():.3f} {os.getpid()}\n")
    return str(tick)


app.add_periodic_task(float(os.environ.get("TICKER_EVERY", "1.0")), record.s(), name="tick")
