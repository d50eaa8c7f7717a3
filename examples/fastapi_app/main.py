"""FastAPI with Celeriac's async API: nothing here blocks the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from .tasks import add, app, slow_square


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await app.aopen()  # connect at startup, not on the first request
    yield
    await app.aclose()  # this loop's broker and result connections


api = FastAPI(lifespan=lifespan)


@api.post("/add")
async def enqueue_add(x: int, y: int) -> dict[str, str]:
    """Send the task and answer at once with its id."""
    result = await add.adelay(x, y)
    return {"task_id": result.id}


@api.get("/results/{task_id}")
async def read_result(task_id: str, timeout: float = 5.0) -> dict[str, object]:
    """Wait up to ``timeout`` seconds for a task's result; 504 if it is not ready."""
    try:
        value = await app.AsyncResult(task_id).aget(timeout=timeout)
    except TimeoutError:
        raise HTTPException(504, f"task {task_id} is not ready after {timeout} s") from None
    return {"task_id": task_id, "value": value}


@api.get("/square")
async def square(x: int, seconds: float = 0.0, timeout: float = 5.0) -> dict[str, int]:
    """Send and await in one request, bounded by ``timeout``."""
    result = await slow_square.adelay(x, seconds)
    try:
        return {"value": await result.aget(timeout=timeout)}
    except TimeoutError:
        raise HTTPException(504, f"task {result.id} is not ready after {timeout} s") from None
