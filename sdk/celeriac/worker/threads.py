"""The threads pool (tasks on a thread pool, limits by a watchdog) and the solo pool (tasks
inline in the loop's thread)."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Container
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from .boundary import safe_repr
from .execute import execute, store_failure
from .job import Job, Outcome
from .limits import Running, Watchdog
from .pool import Done, PoolError

if TYPE_CHECKING:
    from ..app import App

__all__ = ["SoloPool", "ThreadPool"]

log = logging.getLogger("celeriac.worker")
#: A task whose last call (its result stored and what it sends included) took less than this
#: (seconds) may run in the loop's own thread when it arrives alone at an idle pool
#: (``run_here``): the loop is held no longer than by its own work on a batch of messages
#: (~60 us each, up to hundreds a batch).
QUICK = 0.005


def _never() -> None:
    """The hard-limit report of a job without a hard limit: never called."""


class ThreadPool:
    """``concurrency`` threads; a task past its hard limit is abandoned and its slot freed.

    Jobs reach the pool's threads through one queue. A ``ThreadPoolExecutor`` would build a
    Future, with its Condition and lock, for every task: about 7 us of CPU a task, most of
    it in the loop's thread, which bounds a worker's throughput. The executor is still made
    (``executor``): the asyncio pool runs its blocking steps on it.
    """

    name = "threads"
    #: Solo runs each job in the caller's thread: no executor.
    inline = False

    def __init__(self, app: App, concurrency: int, revoked: Container[str], hostname: str) -> None:
        self.app = app
        self.concurrency = concurrency
        self.revoked = revoked
        self.hostname = hostname
        self.running: dict[str, Running] = {}
        #: Called in the task's thread just before it runs (the worker sends task-started).
        self.on_start: Callable[[Job], None] | None = None
        # Jobs beyond ``concurrency`` wait here, so a shrink takes effect (the executor never
        # retires threads) and a prefetched job is not announced as started.
        self._slots = threading.Condition()
        self._busy = 0
        #: Threads waiting at the slots (only after a shrink: there are no more threads than
        #: slots otherwise).
        self._slot_waiters = 0
        self.watchdog = Watchdog(SoftTimeLimitExceeded, TimeLimitExceeded)
        self.executor: ThreadPoolExecutor | None = None
        self._jobs: queue.SimpleQueue[tuple[Job, Done] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: Threads left to a task past its hard limit: they serve no more jobs once it returns
        #: (if ever), and another thread takes their place.
        self._abandoned: set[threading.Thread] = set()
        # Threads never retire: a shrink holds jobs at the slots, a grow raises the bound.
        self._max_threads = concurrency
        #: By task name: did its last call take less than QUICK (see ``run_here``)?
        self.quick: dict[str, bool] = {}
        if not self.inline:
            self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="celeriac-task")

    def submit(self, job: Job, on_done: Done) -> None:
        # Called from the loop's thread only: threads start as jobs come, up to the bound.
        if len(self._threads) - len(self._abandoned) < self._max_threads:
            self._start_thread()
        self._jobs.put((job, on_done))

    def run_here(self, job: Job, on_done: Done) -> bool:
        """Run ``job`` in the caller's thread (the loop's) if that costs the loop no more than
        a hand-off would; False (nothing done) otherwise.

        A task arriving alone at an idle worker otherwise waits for a pool thread to wake and
        take the GIL: a hop of 0.1-0.3 ms on a quiet machine, several on a busy one, in every
        round trip. Only a task without time limits (the watchdog stops a task by raising in
        its thread, and past the hard limit abandons that thread), not async, and whose last
        call took less than QUICK runs here: its events, revocation check (``execute.prepare``)
        and late ack are the pool's as ever, and the loop reads control messages once it
        returns, as it does after a batch.
        """
        if (
            self._busy
            or not self._jobs.empty()
            or job.soft_limit
            or job.hard_limit
            or not self.quick.get(job.name)
            or job.is_async
        ):
            return False
        self.run(job, on_done)
        return True

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"celeriac-task_{len(self._threads)}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _serve(self) -> None:
        """One thread of the pool: run jobs until close() sends None."""
        me = threading.current_thread()
        while (item := self._jobs.get()) is not None:
            try:
                self.run(*item)
            except BaseException:  # a limit's exception landing after the task: the executor
                # swallowed these in its Future; the thread serves on.
                log.exception("%s: a task thread caught an error after its task", self.hostname)
            if me in self._abandoned:  # its place was taken while it ran past its hard limit
                with self._slots:
                    self._threads.remove(me)
                    self._abandoned.discard(me)
                return

    def run(self, job: Job, on_done: Done) -> None:
        """Run one job on this thread, under its time limits."""
        hard = job.hard_limit
        # [holds a slot]: shared with the hard limit's report, which may free it first.
        held = [False]
        if not self.inline:
            with self._slots:
                if self._busy >= self.concurrency:
                    self._slot_waiters += 1
                    try:
                        self._slots.wait_for(self._has_slot)
                    finally:
                        self._slot_waiters -= 1
                self._busy += 1
                held[0] = True
        thread = threading.current_thread()
        # The report of a passed hard limit is made only for a job that has one.
        on_hard_limit = self._hard_limit_report(job, on_done, thread, held) if hard else _never
        job_id = job.id
        running = Running(job_id, threading.get_ident(), on_hard_limit)
        self.running[job_id] = running
        try:
            if self.on_start is not None:
                self.on_start(job)
            if job.soft_limit or hard:
                self.watchdog.watch(running, job.soft_limit, hard)
            began = time.perf_counter()
            outcome = execute(self.app, job.message, job.queue, self.revoked, self.hostname)
            if job.task is not None:  # names a client invents are not kept
                self.quick[job.name] = time.perf_counter() - began < QUICK
        except Exception as exc:  # the backend or broker failed while settling the task
            log.exception("%s: task %s[%s] could not be settled", self.hostname, job.name, job.id)
            outcome = Outcome("requeue", f"worker-error: {safe_repr(exc)}")
        finally:
            keep = running.finish()
            self.running.pop(job_id, None)
            if keep:
                self._release(held)
        if keep:
            on_done(job, outcome)

    def _has_slot(self) -> bool:
        return self._busy < self.concurrency

    def _release(self, held: list[bool]) -> None:
        """Free the slot ``held`` says the job holds (once: the hard limit's report may have)."""
        if held[0]:
            with self._slots:
                if held[0]:
                    held[0] = False
                    self._busy -= 1
                    if self._slot_waiters:  # notify() builds its list of waiters even for none
                        self._slots.notify()

    def _hard_limit_report(
        self, job: Job, on_done: Done, thread: threading.Thread, held: list[bool]
    ) -> Callable[[], None]:
        """What the watchdog calls when ``job`` passes its hard limit."""

        def hard_limit_passed() -> None:
            log.error(
                "%s: task %s[%s] passed its hard time limit; its thread is abandoned",
                self.hostname,
                job.name,
                job.id,
            )
            if not self.inline:
                with self._slots:
                    self._abandoned.add(thread)
            error = TimeLimitExceeded(f"hard time limit ({job.hard_limit}s) exceeded")
            try:
                store_failure(self.app, job.message, error)
            except Exception:  # the slot is freed all the same
                log.exception("%s: time limit failure of %s not stored", self.hostname, job.id)
            self._release(held)
            trace = "".join(traceback.format_exception(error))  # for task-failed, as Celery's
            on_done(job, Outcome("ack", "time-limit", "FAILURE", trace))

        return hard_limit_passed

    def terminate(self, job_id: str, signum: int = signal.SIGTERM) -> bool:
        running = self.running.get(job_id)
        return running is not None and running.interrupt(TaskRevokedError)

    def resize(self, concurrency: int) -> None:
        if self.executor is None:
            raise PoolError(f"the {self.name} pool cannot be resized at run time")
        # Threads start as work arrives, up to the bound (the executor: for the asyncio pool).
        self.executor._max_workers = max(self.executor._max_workers, concurrency)
        self._max_threads = max(self._max_threads, concurrency)
        with self._slots:
            self.concurrency = concurrency
            self._slots.notify_all()
        # Jobs already queued wait for a thread: start the new ones now, not at the next submit.
        if self._threads:
            while len(self._threads) - len(self._abandoned) < self._max_threads:
                self._start_thread()

    def restart(self) -> None:
        """Threads run the worker's own code: nothing to replace (as Celery's thread pool)."""

    def close(self) -> None:
        self.watchdog.stop()
        with self._slots:
            # A thread still running a task past its hard limit may never return: not waited.
            live = [t for t in self._threads if t not in self._abandoned]
        for _ in live:  # after the jobs already queued, as the executor's shutdown
            self._jobs.put(None)
        for thread in live:
            thread.join()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=False)


class SoloPool(ThreadPool):
    """One task at a time, in the loop's own thread (the loop waits for it)."""

    name = "solo"
    inline = True

    def __init__(self, app: App, revoked: Container[str], hostname: str) -> None:
        super().__init__(app, 1, revoked, hostname)

    def submit(self, job: Job, on_done: Done) -> None:
        self.run(job, on_done)
