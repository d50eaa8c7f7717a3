"""The asyncio pool: ``async def`` tasks share one event loop, many in flight at once.

Sync tasks still run on threads. Storing results and sending follow-ups is blocking I/O, so it
runs on those threads too and never stalls the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Container, Coroutine
from typing import TYPE_CHECKING, Any

from celeriac.protocol import TaskMessage

from .. import signals
from ..exceptions import SoftTimeLimitExceeded, TaskRevokedError
from ..task import _request
from .execute import HOSTNAME, log, prepare, settle_failure, settle_success
from .job import Job, Outcome
from .pool import Done
from .threads import ThreadPool

if TYPE_CHECKING:
    from ..app import App

__all__ = ["AsyncioPool"]

#: Threads beside the loop, for sync tasks and for storing results without blocking it.
_SIDE_THREADS = 8


class AsyncioPool:
    """An event loop in its own thread running the ``async def`` tasks, many at once; sync
    tasks, and the blocking I/O of storing results, go to a small thread pool beside it."""

    name = "asyncio"

    def __init__(
        self, app: App, concurrency: int, revoked: Container[str], hostname: str = HOSTNAME
    ) -> None:
        self.app = app
        self.concurrency = concurrency
        self.revoked = revoked
        self.hostname = hostname
        self.sync = ThreadPool(app, _SIDE_THREADS, revoked, hostname)
        assert self.sync.executor is not None
        self.threads = self.sync.executor
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="celeriac-asyncio",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._outer: set[asyncio.Task[Outcome]] = set()
        self._inbox: deque[tuple[Job, Done]] = deque()
        self._woken = False
        # At most ``concurrency`` async tasks in flight; the others wait here, in the loop's
        # thread (so a shrink takes effect, and a prefetched task is not announced started).
        self._held: deque[tuple[Job, Done]] = deque()
        self._in_flight = 0
        self._on_start: Callable[[Job], None] | None = None

    @property
    def on_start(self) -> Callable[[Job], None] | None:
        """Called when a task really starts: an async one on the loop, as its coroutine is
        scheduled; a sync one in its thread."""
        return self._on_start

    @on_start.setter
    def on_start(self, call: Callable[[Job], None] | None) -> None:
        self._on_start = call
        self.sync.on_start = call

    def submit(self, job: Job, on_done: Done) -> None:
        """Start an async task on the loop (a sync one on the threads beside it)."""
        if not job.is_async:
            self.sync.submit(job, on_done)
            return
        # No cross-thread future per task (run_coroutine_threadsafe makes a concurrent Future,
        # with its Condition, and an asyncio one), and one wake-up of the loop for all the tasks
        # submitted before it runs: a wake-up is a write to its self-pipe.
        self._inbox.append((job, on_done))
        if not self._woken:
            self._woken = True
            self.loop.call_soon_threadsafe(self._spawn_all)

    def _spawn_all(self) -> None:
        self._woken = False  # before draining: a submit after this point wakes the loop again
        inbox, held = self._inbox, self._held
        while inbox:
            held.append(inbox.popleft())
        self._spawn_held()

    def _spawn_held(self) -> None:
        """Start held tasks while there is room (on the loop's thread)."""
        held = self._held
        while held and self._in_flight < self.concurrency:
            self._spawn(*held.popleft())

    def _spawn(self, job: Job, on_done: Done) -> None:
        self._in_flight += 1
        outer = self.loop.create_task(self._run(job))
        self._outer.add(outer)  # the loop keeps only weak references to its tasks

        def finished(task: asyncio.Task[Outcome]) -> None:
            self._outer.discard(task)
            self._in_flight -= 1
            on_done(job, _outcome(task))
            self._spawn_held()

        outer.add_done_callback(finished)

    async def _run(self, job: Job) -> Outcome:
        msg, queue, revoked = job.message, job.queue, self.revoked
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
        running = loop.create_task(_no_exit(coroutine), context=context)
        self.tasks[msg.id] = running
        if self._on_start is not None:
            self._on_start(job)
        # The worker read and checked the limits once, at dispatch (remote control included).
        limit = min(x for x in (job.soft_limit, job.hard_limit, float("inf")) if x)
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
            error = exc.exc if isinstance(exc, _Exited) else exc
            return await loop.run_in_executor(
                self.threads, settle_failure, self.app, task, msg, request, error, queue
            )
        finally:
            self.tasks.pop(msg.id, None)
        if _quiet_after(self.app, task, msg):
            # nothing to store or send
            return settle_success(self.app, task, msg, result, queue, request)
        return await loop.run_in_executor(
            self.threads, settle_success, self.app, task, msg, result, queue, request
        )

    def terminate(self, job_id: str, signum: int = signal.SIGTERM) -> bool:
        """Cancel a running async task (revoke with terminate), or interrupt a sync one."""
        running = self.tasks.get(job_id)
        if running is None:
            return self.sync.terminate(job_id, signum)
        self.loop.call_soon_threadsafe(running.cancel)
        return True

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` async tasks at once from now on (a shrink lets the tasks
        in flight finish). Sync tasks keep their threads beside the loop."""

        def apply() -> None:
            self.concurrency = concurrency
            self._spawn_held()

        self.loop.call_soon_threadsafe(apply)

    def restart(self) -> None:
        """The loop runs the worker's own code: nothing to replace."""

    def close(self) -> None:
        """Stop the loop once the tasks in it have finished (the caller waits for them)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self.sync.close()


def _quiet_before(app: App, msg: TaskMessage, revoked: Container[str]) -> bool:
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


class _Exited(Exception):
    """A task's ``SystemExit``, carried as an ordinary exception: asyncio re-raises
    ``SystemExit`` out of its loop, which would stop every task of the pool."""

    def __init__(self, exc: SystemExit) -> None:
        super().__init__(exc)
        self.exc = exc


async def _no_exit(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coroutine
    except SystemExit as exc:
        raise _Exited(exc) from None
