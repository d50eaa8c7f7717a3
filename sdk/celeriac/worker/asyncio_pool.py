"""The asyncio pool: ``async def`` tasks share one event loop, many in flight at once.

Sync tasks still run on threads. Storing results and sending follow-ups is blocking I/O, so it
runs on those threads too and never stalls the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from celeriac.protocol import TaskMessage

from ..exceptions import SoftTimeLimitExceeded, TaskRevokedError
from ..task import _request
from .execute import Outcome, prepare, settle_failure, settle_success

if TYPE_CHECKING:
    from ..app import App

__all__ = ["AsyncioPool"]


class AsyncioPool:
    """An event loop in its own thread, running up to ``limit`` async tasks at once."""

    def __init__(self, app: App, threads: ThreadPoolExecutor, limit: int) -> None:
        self.app = app
        self.threads = threads
        self.limit = limit
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="celeriac-asyncio",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def submit(self, msg: TaskMessage, queue: str, revoked: set[str],
               done: Callable[[Outcome], None]) -> None:  # fmt: skip
        """Start an async task; ``done`` is called with its outcome (from the loop thread)."""
        future = asyncio.run_coroutine_threadsafe(self._run(msg, queue, revoked), self.loop)
        future.add_done_callback(lambda f: done(_outcome(f)))

    async def _run(self, msg: TaskMessage, queue: str, revoked: set[str]) -> Outcome:
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self.threads, prepare, self.app, msg, queue, revoked)
        if isinstance(prepared, Outcome):
            return prepared
        task, request = prepared
        # The coroutine runs in a context of its own, so self.request is this call's.
        context = contextvars.copy_context()
        context.run(_request.set, request)
        coroutine = context.run(task.run_with, request, msg.args, msg.kwargs)
        running = loop.create_task(coroutine, context=context)
        self.tasks[msg.id] = running
        soft = msg.headers.soft_time_limit or task.option("soft_time_limit")
        hard = msg.headers.time_limit or task.option("time_limit")
        limit = min(x for x in (soft, hard, float("inf")) if x)
        try:
            result = await asyncio.wait_for(running, None if limit == float("inf") else limit)
        except TimeoutError:
            exc = SoftTimeLimitExceeded(f"time limit ({limit}s) exceeded")
            return await loop.run_in_executor(
                self.threads, settle_failure, self.app, task, msg, request, exc, queue
            )
        except asyncio.CancelledError:
            exc2 = TaskRevokedError("terminated")
            return await loop.run_in_executor(
                self.threads, settle_failure, self.app, task, msg, request, exc2, queue
            )
        except Exception as exc:
            return await loop.run_in_executor(
                self.threads, settle_failure, self.app, task, msg, request, exc, queue
            )
        finally:
            self.tasks.pop(msg.id, None)
        return await loop.run_in_executor(
            self.threads, settle_success, self.app, task, msg, result, queue
        )

    def cancel(self, task_id: str) -> None:
        """Cancel a running async task (revoke with terminate)."""
        running = self.tasks.get(task_id)
        if running is not None:
            self.loop.call_soon_threadsafe(running.cancel)

    def close(self) -> None:
        """Stop the loop once the tasks in it have finished (the caller waits for them)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _outcome(future: Any) -> Outcome:
    try:
        outcome: Outcome = future.result()
    except Exception as exc:  # the backend or broker failed while settling the task
        return Outcome("requeue", f"worker-error: {exc!r}")
    return outcome
