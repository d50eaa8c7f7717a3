"""The asyncio pool: ``async def`` tasks share one event loop, many in flight at once.

Sync tasks still run on threads. Storing results and sending follow-ups is blocking I/O, so it
runs on those threads too and never stalls the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from celeriac.protocol import TaskMessage

from .. import signals
from ..exceptions import SoftTimeLimitExceeded, TaskRevokedError
from ..task import _request
from .execute import HOSTNAME, Outcome, log, prepare, settle_failure, settle_success

if TYPE_CHECKING:
    from ..app import App

__all__ = ["AsyncioPool"]

#: (soft, hard) time limits in seconds, checked by the worker.
Limits = tuple[float | None, float | None]


class AsyncioPool:
    """An event loop in its own thread, running up to ``limit`` async tasks at once."""

    def __init__(
        self, app: App, threads: ThreadPoolExecutor, limit: int, hostname: str = HOSTNAME
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.threads = threads
        self.limit = limit
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="celeriac-asyncio",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._outer: set[asyncio.Task[Outcome]] = set()
        self._inbox: deque[tuple[TaskMessage, str, set[str], Callable[[Outcome], None], Limits]] = (
            deque()
        )
        self._woken = False

    def submit(self, msg: TaskMessage, queue: str, revoked: set[str],
               done: Callable[[Outcome], None], limits: Limits = (None, None)) -> None:  # fmt: skip
        """Start an async task; ``done`` is called with its outcome (from the loop thread)."""
        # No cross-thread future per task (run_coroutine_threadsafe makes a concurrent Future,
        # with its Condition, and an asyncio one), and one wake-up of the loop for all the tasks
        # submitted before it runs: a wake-up is a write to its self-pipe.
        self._inbox.append((msg, queue, revoked, done, limits))
        if not self._woken:
            self._woken = True
            self.loop.call_soon_threadsafe(self._spawn_all)

    def _spawn_all(self) -> None:
        self._woken = False  # before draining: a submit after this point wakes the loop again
        inbox = self._inbox
        while inbox:
            self._spawn(*inbox.popleft())

    def _spawn(self, msg: TaskMessage, queue: str, revoked: set[str],
               done: Callable[[Outcome], None], limits: Limits) -> None:  # fmt: skip
        outer = self.loop.create_task(self._run(msg, queue, revoked, limits))
        self._outer.add(outer)  # the loop keeps only weak references to its tasks

        def finished(task: asyncio.Task[Outcome]) -> None:
            self._outer.discard(task)
            done(_outcome(task))

        outer.add_done_callback(finished)

    async def _run(
        self, msg: TaskMessage, queue: str, revoked: set[str], limits: Limits
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        if _quiet_before(self.app, msg, revoked):
            prepared = prepare(self.app, msg, queue, revoked, self.hostname)  # no I/O, no hop
        else:
            prepared = await loop.run_in_executor(
                self.threads, prepare, self.app, msg, queue, revoked, self.hostname
            )
        if isinstance(prepared, Outcome):
            return prepared
        task, request = prepared
        # The coroutine runs in a context of its own, so self.request is this call's.
        context = contextvars.copy_context()
        context.run(_request.set, request)
        coroutine = context.run(task.run_with, request, msg.args, msg.kwargs)
        running = loop.create_task(coroutine, context=context)
        self.tasks[msg.id] = running
        # The worker read and checked the limits once, at dispatch (remote control included).
        limit = min(x for x in (*limits, float("inf")) if x)
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
        if _quiet_after(self.app, task, msg):
            return settle_success(self.app, task, msg, result, queue)  # nothing to store or send
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


def _quiet_before(app: App, msg: TaskMessage, revoked: set[str]) -> bool:
    """True when ``prepare`` will not touch the result backend (so it may run on the loop)."""
    task = app.tasks.get(msg.task)
    return (
        task is not None
        and msg.id not in revoked
        and msg.headers.expires is None
        and not task.option("track_started")
    )


def _quiet_after(app: App, task: Any, msg: TaskMessage) -> bool:
    """True when ``settle_success`` has nothing to store or send and no receiver to call."""
    ignored = msg.headers.ignore_result or task.option("ignore_result")
    return (
        (ignored or not app.conf.result_backend)
        and not msg.embed.callbacks
        and not msg.embed.chain
        and msg.embed.chord is None
        and not signals.task_success
        and not log.isEnabledFor(logging.INFO)
    )


def _outcome(future: Any) -> Outcome:
    try:
        outcome: Outcome = future.result()
    except (Exception, asyncio.CancelledError) as exc:  # the backend or broker failed
        return Outcome("requeue", f"worker-error: {exc!r}")
    return outcome
