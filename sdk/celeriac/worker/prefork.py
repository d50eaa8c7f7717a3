"""The prefork pool: tasks run in child processes, one at a time each (CPU-bound work).

Children are forked from the worker, so the app and its tasks are already loaded. A child that
passes its hard time limit, is terminated by a revoke, or dies is replaced; what it was running
is reported (time limit, revoked) or given back to the queue (died).
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from .. import signals
from ..exceptions import (
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)
from .boundary import safe_repr
from .execute import HOSTNAME, execute, store_failure
from .job import Job, Outcome
from .pool import Done, PoolError

if TYPE_CHECKING:
    from ..app import App

__all__ = ["PreforkPool"]

log = logging.getLogger("celeriac.worker")
_PR_SET_PDEATHSIG = 1
#: What a child sends when it starts a task, before its outcome: the task really starts now.
_STARTED = "started"


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so a SIGKILL of
    the worker leaves no child behind running or holding tasks. Elsewhere a thread watches
    for the parent to go (the child is then reparented)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _soft_limit(signum: int, frame: Any) -> None:
    raise SoftTimeLimitExceeded()  # bare, as billiard raises it (the events show its repr)


def _child(
    app: App,
    conn: Connection,
    max_tasks: int | None,
    max_memory_kb: int | None,
    hostname: str,
    parent: int,
) -> None:
    """A child's life: run jobs until told to stop, the task quota is used, or memory is high."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _soft_limit)
    app.reset_after_fork()
    signals.worker_process_init.send(None)
    done = 0
    while True:
        job = conn.recv()
        if job is None:
            break
        msg, queue, revoked, soft = job
        conn.send(_STARTED)
        if soft:
            signal.setitimer(signal.ITIMER_REAL, soft)
        try:
            outcome = execute(app, msg, queue, revoked, hostname)
            if app._producers is not None:
                # What the task sent is confirmed before the parent acks it (publish_window).
                app._producers.flush_sent()
        except Exception as exc:  # the backend or broker failed while settling the task
            outcome = Outcome("requeue", f"worker-error: {safe_repr(exc)}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        done += 1
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        retire = (max_tasks is not None and done >= max_tasks) or (
            max_memory_kb is not None and rss_kb > max_memory_kb
        )
        try:
            conn.send((outcome, retire))
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            # A return value that does not pickle: the parent only shows it in an event.
            conn.send((dataclasses.replace(outcome, value=safe_repr(outcome.value)), retire))
        if retire:
            break
    signals.worker_process_shutdown.send(None, pid=os.getpid(), exitcode=0)


@dataclass
class Child:
    """One child process and the job it runs, if any."""

    process: Any
    conn: Connection
    job: tuple[Job, Done] | None = None
    started: float = 0.0
    hard: float | None = None
    killed_for: str | None = None
    #: Replace this child once its task ends (``pool_restart``).
    stale: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class PreforkPool:
    """``concurrency`` child processes; jobs wait in the pool until a child is free, so the
    consumer thread never blocks (it must keep fetching to renew its holds)."""

    name = "prefork"

    def __init__(
        self,
        app: App,
        concurrency: int,
        revoked: Container[str] = frozenset(),
        hostname: str = HOSTNAME,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.concurrency = concurrency
        self.revoked = revoked
        self.pending: collections.deque[tuple[Job, Done]] = collections.deque()
        self.ctx = multiprocessing.get_context("fork")
        self.max_tasks = app.conf.worker_max_tasks_per_child
        self.max_memory = app.conf.worker_max_memory_per_child
        self.children: list[Child] = [self._spawn() for _ in range(concurrency)]
        #: Children told to stop by a shrink; the collector reaps them once they exit.
        self._retired: list[Child] = []
        #: Called (from the collector thread) when a child starts a job.
        #: Called (from the collector thread) with the job and the child's pid.
        self.on_start: Callable[[Job, int], None] | None = None
        self._starting: list[tuple[Job, int]] = []  # announced once the lock is released
        self._lock = threading.RLock()
        self._stopping = False
        self._collector = threading.Thread(
            target=self._collect, name="celeriac-prefork", daemon=True
        )
        self._collector.start()

    def _spawn(self) -> Child:
        signals.worker_before_create_process.send(self)
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(
            target=_child,
            args=(self.app, child, self.max_tasks, self.max_memory, self.hostname, os.getpid()),
            daemon=True,
        )
        process.start()
        child.close()
        return Child(process, parent)

    def submit(self, job: Job, on_done: Done) -> None:
        """Queue a task; it starts in the next free child. ``on_done`` gets its outcome."""
        with self._lock:
            self.pending.append((job, on_done))
            self._start_pending()

    def _start_pending(self) -> None:
        """Hand waiting jobs to idle children (the caller holds the lock)."""
        for child in self.children:
            if not self.pending:
                return
            if child.job is None and child.process.is_alive():
                job, on_done = self.pending.popleft()
                child.job = (job, on_done)
                child.started = time.monotonic()
                child.hard = job.hard_limit
                child.killed_for = None
                # The child needs to know only whether this one task is revoked.
                revoked = (job.id,) if job.id in self.revoked else ()
                child.conn.send((job.message, job.queue, revoked, job.soft_limit))

    def terminate(self, job_id: str, signum: int = signal.SIGTERM) -> bool:
        """Send ``signum`` to the child running ``job_id`` (revoke with terminate), as Celery's
        prefork pool does; a child that dies of it is replaced and its task is REVOKED."""
        with self._lock:
            for child in self.children:
                if child.job is not None and child.job[0].id == job_id:
                    child.killed_for = "revoked"
                    try:
                        os.kill(child.process.pid, signum)
                    except ProcessLookupError:  # it ended meanwhile; the collector reports it
                        pass
                    return True
        return False

    @property
    def pids(self) -> list[int]:
        """The children's process ids (``inspect stats``)."""
        return [c.process.pid for c in list(self.children)]

    def resize(self, concurrency: int) -> None:
        """Start more children, or stop idle ones: as Celery's prefork pool (billiard), a shrink
        stops only idle children, and is refused when too few are idle."""
        with self._lock:
            if self._stopping:
                raise PoolError("the prefork pool is closing")
            extra = concurrency - len(self.children)
            if extra >= 0:
                self.children.extend(self._spawn() for _ in range(extra))
            else:
                idle = [c for c in self.children if c.job is None and c.process.is_alive()]
                if len(idle) < -extra:
                    raise PoolError(
                        f"can't shrink the pool by {-extra}: only {len(idle)} of its "
                        f"{len(self.children)} processes are idle"
                    )
                for child in idle[:-extra]:
                    self.children.remove(child)
                    self._retire(child)
            self.concurrency = concurrency
            self._start_pending()

    def restart(self) -> None:
        """Replace every child, forked afresh from the worker (with the modules it has now):
        idle ones at once, busy ones when their task ends, as Celery's prefork pool restarts."""
        with self._lock:
            for i, child in enumerate(list(self.children)):
                if child.job is None:
                    self._retire(child)
                    self.children[i] = self._spawn()
                else:
                    child.stale = True
            self._start_pending()

    def _retire(self, child: Child) -> None:
        """Tell an idle child to exit; the collector reaps it (the caller holds the lock)."""
        self._retired.append(child)
        try:
            child.conn.send(None)
        except OSError:
            child.process.kill()

    def _collect(self) -> None:
        """Read outcomes, enforce hard limits, replace children that are gone."""
        while not self._stopping:
            conns = [c.conn for c in self.children]
            ready = wait(conns, timeout=0.1)
            now = time.monotonic()
            with self._lock:
                for child in list(self.children):
                    if child.job is not None and child.hard and now - child.started > child.hard:
                        child.killed_for = "time-limit"
                        child.process.kill()
                for child in list(self.children):
                    if child.conn in ready:
                        self._read(child)
                    elif not child.process.is_alive():
                        self._replace(child)
                self._reap()
                self._start_pending()
                starting, self._starting = self._starting, []
            for job, pid in starting:
                self._announce(job, pid)

    def _announce(self, job: Job, pid: int) -> None:
        if self.on_start is None:
            return
        try:
            self.on_start(job, pid)
        except Exception:  # an event not sent must not stop the collector
            log.exception("%s: task-started of %s not sent", self.hostname, job.id)

    def _reap(self) -> None:
        """Close the children a shrink stopped, once they have exited."""
        for child in list(self._retired):
            if not child.process.is_alive():
                child.process.join(0)
                child.conn.close()
                self._retired.remove(child)

    def _read(self, child: Child) -> None:
        try:
            message = child.conn.recv()
        except (EOFError, OSError):
            self._replace(child)
            return
        if message == _STARTED:
            if child.job is not None:
                self._starting.append((child.job[0], child.process.pid))
            return
        outcome, retire = message
        job, child.job = child.job, None
        if child.stale and not retire:
            self._retire(child)
            self.children[self.children.index(child)] = self._spawn()
        elif retire:
            child.process.join(5)
            self._replace(child, report=False)
        if job is not None:
            job[1](job[0], outcome)

    def _replace(self, child: Child, report: bool = True) -> None:
        """Swap a dead child for a new one; settle what it was running."""
        child.process.join(1)
        child.conn.close()
        job, child.job = child.job, None
        if not self._stopping:
            self.children[self.children.index(child)] = self._spawn()
        if job is None or not report:
            return
        (running, on_done), msg = job, job[0].message
        try:
            outcome = self._lost(child, msg)
        except Exception as exc:  # the result backend failed: the delivery comes back, counted
            log.exception("%s: the end of %s[%s] not stored", self.hostname, msg.task, msg.id)
            outcome = Outcome("requeue", f"worker-error: {safe_repr(exc)}")
        on_done(running, outcome)

    def _lost(self, child: Child, msg: Any) -> Outcome:
        """What to do with the task of a child that is gone, and store why."""
        if child.killed_for == "time-limit":
            error = TimeLimitExceeded("hard time limit exceeded")
            store_failure(self.app, msg, error)
            trace = "".join(traceback.format_exception(error))  # for task-failed, as Celery's
            return Outcome("ack", "time-limit", "FAILURE", trace)
        if child.killed_for == "revoked":
            store_failure(self.app, msg, TaskRevokedError("terminated"), "REVOKED")
            return Outcome("ack", "revoked", "REVOKED")
        code = child.process.exitcode
        why = f"the process running the task exited with {code}"
        task = self.app.tasks.get(msg.task)
        # The task's own reject_on_worker_lost, else the setting, as Celery decides.
        setting = self.app.conf.task_reject_on_worker_lost
        if task.option("reject_on_worker_lost") if task is not None else setting:
            # Given back, counted: past worker_max_deliveries it is dead-lettered as poison
            # with a WorkerLostError FAILURE, so a task that kills its process cannot loop.
            log.error("%s: %s[%s]: %s; it goes back to the queue", self.hostname, msg.task,
                      msg.id, why)  # fmt: skip
            return Outcome("requeue", f"worker-lost: {why}")
        log.error("%s: %s[%s]: %s", self.hostname, msg.task, msg.id, why)
        store_failure(self.app, msg, WorkerLostError(why))
        return Outcome("ack", f"worker-lost: {why}", "FAILURE")

    def close(self) -> None:
        """Stop the children once they are idle (the caller has waited for running tasks)."""
        self._stopping = True
        self._collector.join(5)
        for child in self.children:
            try:
                child.conn.send(None)
            except OSError:
                pass
        for child in self.children + self._retired:
            child.process.join(5)
            if child.process.is_alive():
                os.kill(child.process.pid, signal.SIGKILL)
