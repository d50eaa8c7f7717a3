"""The prefork pool: tasks run in child processes, one at a time each (CPU-bound work).

Children are forked from the worker, so the app and its tasks are already loaded. A child that
passes its hard time limit, is terminated by a revoke, or dies is replaced; what it was running
is reported (time limit, revoked) or given back to the queue (died).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from ..exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from .execute import Outcome, execute, store_failure

if TYPE_CHECKING:
    from ..app import App

__all__ = ["PreforkPool"]

log = logging.getLogger("celeriac.worker")
Finish = Callable[[Outcome], None]


def _soft_limit(signum: int, frame: Any) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


def _child(app: App, conn: Connection, max_tasks: int | None, max_memory_kb: int | None) -> None:
    """A child's life: run jobs until told to stop, the task quota is used, or memory is high."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, _soft_limit)
    app.reset_after_fork()
    done = 0
    while True:
        job = conn.recv()
        if job is None:
            return
        msg, queue, revoked, soft = job
        if soft:
            signal.setitimer(signal.ITIMER_REAL, soft)
        try:
            outcome = execute(app, msg, queue, revoked)
        except Exception as exc:  # the backend or broker failed while settling the task
            outcome = Outcome("requeue", f"worker-error: {exc!r}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        done += 1
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        retire = (max_tasks is not None and done >= max_tasks) or (
            max_memory_kb is not None and rss_kb > max_memory_kb
        )
        conn.send((outcome, retire))
        if retire:
            return


@dataclass
class Child:
    """One child process and the job it runs, if any."""

    process: Any
    conn: Connection
    job: tuple[Any, Any, Finish] | None = None  # (delivery, msg, finish)
    started: float = 0.0
    hard: float | None = None
    killed_for: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class PreforkPool:
    """``concurrency`` child processes; jobs wait in the pool until a child is free, so the
    consumer thread never blocks (it must keep fetching to renew its holds)."""

    def __init__(self, app: App, concurrency: int) -> None:
        self.app = app
        self.concurrency = concurrency
        self.pending: collections.deque[tuple[Any, Any, Finish, frozenset[str], Any, Any]] = (
            collections.deque()
        )
        self.ctx = multiprocessing.get_context("fork")
        self.max_tasks = app.conf.worker_max_tasks_per_child
        self.max_memory = app.conf.worker_max_memory_per_child
        self.children: list[Child] = [self._spawn() for _ in range(concurrency)]
        self._lock = threading.RLock()
        self._stopping = False
        self._collector = threading.Thread(
            target=self._collect, name="celeriac-prefork", daemon=True
        )
        self._collector.start()

    def _spawn(self) -> Child:
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(
            target=_child, args=(self.app, child, self.max_tasks, self.max_memory), daemon=True
        )
        process.start()
        child.close()
        return Child(process, parent)

    def submit(
        self,
        delivery: Any,
        msg: Any,
        finish: Finish,
        revoked: set[str],
        soft: float | None,
        hard: float | None,
    ) -> None:
        """Queue a task; it starts in the next free child. ``finish`` gets its outcome."""
        with self._lock:
            self.pending.append((delivery, msg, finish, frozenset(revoked), soft, hard))
            self._start_pending()

    def _start_pending(self) -> None:
        """Hand waiting jobs to idle children (the caller holds the lock)."""
        for child in self.children:
            if not self.pending:
                return
            if child.job is None and child.process.is_alive():
                delivery, msg, finish, revoked, soft, hard = self.pending.popleft()
                child.job = (delivery, msg, finish)
                child.started = time.monotonic()
                child.hard = hard
                child.killed_for = None
                child.conn.send((msg, delivery.queue, revoked, soft))

    def terminate(self, task_id: str) -> bool:
        """Kill the child running ``task_id`` (revoke with terminate); it is replaced."""
        with self._lock:
            for child in self.children:
                if child.job is not None and child.job[1].id == task_id:
                    child.killed_for = "revoked"
                    child.process.kill()
                    return True
        return False

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
                self._start_pending()

    def _read(self, child: Child) -> None:
        try:
            outcome, retire = child.conn.recv()
        except (EOFError, OSError):
            self._replace(child)
            return
        job, child.job = child.job, None
        if retire:
            child.process.join(5)
            self._replace(child, report=False)
        if job is not None:
            job[2](outcome)

    def _replace(self, child: Child, report: bool = True) -> None:
        """Swap a dead child for a new one; settle what it was running."""
        child.process.join(1)
        child.conn.close()
        job, child.job = child.job, None
        if not self._stopping:
            self.children[self.children.index(child)] = self._spawn()
        if job is None or not report:
            return
        _delivery, msg, finish = job
        if child.killed_for == "time-limit":
            store_failure(self.app, msg, TimeLimitExceeded("hard time limit exceeded"))
            outcome = Outcome("ack", "time-limit")
        elif child.killed_for == "revoked":
            store_failure(self.app, msg, TaskRevokedError("terminated"))
            outcome = Outcome("ack", "revoked")
        else:
            log.error(
                "a child process died running %s[%s]; it goes back to the queue", msg.task, msg.id
            )
            outcome = Outcome("requeue", "worker-lost")
        finish(outcome)

    def close(self) -> None:
        """Stop the children once they are idle (the caller has waited for running tasks)."""
        self._stopping = True
        self._collector.join(5)
        for child in self.children:
            try:
                child.conn.send(None)
            except OSError:
                pass
        for child in self.children:
            child.process.join(5)
            if child.process.is_alive():
                os.kill(child.process.pid, signal.SIGKILL)
