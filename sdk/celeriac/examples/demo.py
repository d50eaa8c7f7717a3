"""The demo's tasks: arithmetic, a flaky call that retries, an async one, one that fails."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from celeriac import App

__all__ = ["make_app"]


def make_app(broker: str, backend: str) -> App:
    """An app with the demo tasks registered, named ``demo.<function>``."""
    app = App("demo", broker=broker, backend=backend, worker_concurrency=4)
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    @app.task(name="demo.add")
    def add(x: int, y: int) -> int:
        """Add two numbers."""
        return x + y

    @app.task(name="demo.multiply")
    def multiply(x: int, y: int) -> int:
        """Multiply two numbers."""
        return x * y

    @app.task(name="demo.tsum")
    def tsum(values: list[int]) -> int:
        """Sum a list (a chord's body)."""
        return sum(values)

    @app.task(name="demo.flaky", bind=True, max_retries=3, default_retry_delay=0.2)
    def flaky(self: Any, key: str) -> str:
        """Fail on the first attempt, then succeed: shows a retry."""
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            attempt = attempts[key]
        if attempt == 1:
            raise self.retry(exc=ConnectionError("the first attempt always fails"))
        return f"succeeded on attempt {attempt}"

    @app.task(name="demo.fetch")
    async def fetch(url: str) -> dict[str, Any]:
        """An async task: waits on (pretend) I/O."""
        await asyncio.sleep(0.2)
        return {"url": url, "status": 200}

    @app.task(name="demo.fail")
    def fail(message: str) -> None:
        """Always raises."""
        raise ValueError(message)

    return app
