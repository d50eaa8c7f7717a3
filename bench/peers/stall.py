"""Measuring how long an event loop was kept from running: a ticker that notes its longest gap.

Plain standard library, so the peers' venvs (Taskiq) import it too (bench/aio.py)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["StallMeter"]


class StallMeter:
    """Ticks every ``period`` seconds on the running loop; ``longest`` is the worst lateness.

    A blocking call on the loop shows up as a tick that came that much later than due; this
    measures blocking, not speed (a busy machine adds a little, never hundreds of ms).
    """

    def __init__(self, period: float = 0.001) -> None:
        self.period = period
        self.longest = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            due = time.perf_counter() + self.period
            await asyncio.sleep(self.period)
            self.longest = max(self.longest, time.perf_counter() - due)
            self.ticks += 1

    async def __aenter__(self) -> StallMeter:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
