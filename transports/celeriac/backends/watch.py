"""Waiting for results from asyncio without blocking the event loop.

Backends with no notification channel (SQLite, memory, rpc://) are polled by one thread per
backend and process, whatever the number of waiters: each waiter gets a future, bridged to its
event loop with ``asyncio.wrap_future``, so no backend call ever runs on a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import threading
from collections.abc import Callable

from celeriac.protocol.results import ResultRecord
from celeriac.protocol.states import READY_STATES

__all__ = ["PollingWatcher", "settle", "wait_future"]

log = logging.getLogger("celeriac.backends")


def settle(futures: list[cf.Future[ResultRecord]], record: ResultRecord) -> None:
    """Hand ``record`` to every waiter still waiting (a cancelled one is skipped)."""
    for future in futures:
        try:
            future.set_result(record)
        except cf.InvalidStateError:  # cancelled by a timeout meanwhile
            pass


async def wait_future(
    future: cf.Future[ResultRecord], task_id: str, timeout: float | None
) -> ResultRecord:
    """Await a watcher's future on the running loop; TimeoutError after ``timeout`` s."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise TimeoutError(f"task {task_id} not ready after {timeout} s") from None


class PollingWatcher:
    """Polls the records of every awaited task id from one thread."""

    def __init__(
        self,
        get: Callable[[str], ResultRecord],
        interval: float = 0.05,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._get = get
        self._transient = transient
        self._interval = interval
        self._lock = threading.Lock()
        self._waiting: dict[str, list[cf.Future[ResultRecord]]] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False

    def watch(self, task_id: str) -> cf.Future[ResultRecord]:
        """A future that gets the record of ``task_id`` once it is ready."""
        future: cf.Future[ResultRecord] = cf.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the result backend was closed")
            if self._thread is None or self._pid != os.getpid():  # none yet, or forked
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="celeriac-result-watcher", daemon=True
                )
                self._thread.start()
            self._waiting.setdefault(task_id, []).append(future)
        self._wake.set()
        return future

    def close(self) -> None:
        """Stop the thread; waiters still waiting get a RuntimeError."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, {}
        self._wake.set()
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(RuntimeError("the result backend was closed"))

    def _pending_ids(self) -> list[str]:
        with self._lock:
            for task_id in list(self._waiting):
                live = [f for f in self._waiting[task_id] if not f.done()]
                if live:
                    self._waiting[task_id] = live
                else:
                    del self._waiting[task_id]
            return list(self._waiting)

    def _run(self) -> None:
        delay = 0.002
        while not self._closed:
            ids = self._pending_ids()
            if not ids:
                self._wake.wait(1.0)
                self._wake.clear()
                delay = 0.002
                continue
            for task_id in ids:
                try:
                    record = self._get(task_id)
                except self._transient as exc:  # unreachable for now: asked again next round
                    log.warning("reading the result of %s failed, trying again: %s", task_id, exc)
                    continue
                except Exception as exc:  # the waiters see what failed, not a hang
                    with self._lock:
                        failed = self._waiting.pop(task_id, [])
                    for future in failed:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if record.status in READY_STATES:
                    with self._lock:
                        ready = self._waiting.pop(task_id, [])
                    settle(ready, record)
            # A new waiter wakes the thread at once; otherwise back off up to ``interval``.
            if self._wake.wait(delay):
                self._wake.clear()
                delay = 0.002
            else:
                delay = min(delay * 2, self._interval)
