"""The tasks of the FastAPI example (a worker runs them: ``celeriac worker -A
examples.fastapi_app.tasks:app``)."""

from __future__ import annotations

import asyncio

from celeriac import App

app = App("shop", broker="redis://localhost:6379/0", backend="redis://localhost:6379/1")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
async def slow_square(x: int, seconds: float) -> int:
    await asyncio.sleep(seconds)  # stands for slow I/O the task awaits
    return x * x
