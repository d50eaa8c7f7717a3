"""What the dashboard knows, built from events only: workers, tasks, queues and time series.

Events come from Celeriac and Celery workers alike, so only Celery's field names are read, and
every field is treated as untrusted data (kept as given, bounded in size, never interpreted).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["READY_STATES", "State", "TaskInfo", "WorkerInfo"]

#: Event type -> the task state it means (Celery's mapping).
EVENT_STATES = {
    "task-sent": "PENDING",
    "task-received": "RECEIVED",
    "task-started": "STARTED",
    "task-succeeded": "SUCCESS",
    "task-failed": "FAILURE",
    "task-retried": "RETRY",
    "task-revoked": "REVOKED",
    "task-rejected": "REJECTED",
}
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED"})
#: Where an event's time stamp is kept, by event type.
_STAMPS = {
    "task-sent": "sent",
    "task-received": "received",
    "task-started": "started",
    "task-succeeded": "succeeded",
    "task-failed": "failed",
    "task-retried": "retried",
    "task-revoked": "revoked",
    "task-rejected": "rejected",
}
_TEXT_LIMIT = 4096  # args, kwargs, results: enough to read, bounded so a flood cannot grow memory
_TRACEBACK_LIMIT = 16384


def _text(value: Any, limit: int = _TEXT_LIMIT) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _number(value: Any) -> float | None:
    """A finite float from an event's field, else None (an int past a float's range too)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    """A count from an event's field (0 to 2**63 - 1: what the pages' JSON encodes), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        return None
    return value


@dataclass
class TaskInfo:
    """One task as its events told it."""

    uuid: str
    name: str | None = None
    state: str = "PENDING"
    args: str | None = None
    kwargs: str | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    worker: str | None = None
    queue: str | None = None
    retries: int | None = None
    eta: str | None = None
    expires: str | None = None
    runtime: float | None = None
    root_id: str | None = None
    parent_id: str | None = None
    #: Event time stamps by what happened: sent, received, started, succeeded, failed, ...
    timestamps: dict[str, float] = field(default_factory=dict)
    #: The new task's id when it was retried from the dashboard.
    retried_as: str | None = None
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "state": self.state,
            "args": self.args,
            "kwargs": self.kwargs,
            "result": self.result,
            "exception": self.exception,
            "traceback": self.traceback,
            "worker": self.worker,
            "queue": self.queue,
            "retries": self.retries,
            "eta": self.eta,
            "expires": self.expires,
            "runtime": self.runtime,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "timestamps": dict(self.timestamps),
            "retried_as": self.retried_as,
        }


@dataclass
class WorkerInfo:
    """One worker as its heartbeats (and task events) told it."""

    hostname: str
    #: When we last heard from it, by our clock (workers' clocks may disagree with ours).
    last_seen: float = 0.0
    offline: bool = False
    freq: float = 2.0
    loadavg: list[float] = field(default_factory=list)
    processed: int = 0
    active: int = 0
    pid: int | None = None
    software: str | None = None

    def alive(self, now: float) -> bool:
        # Celery's rule: a worker is gone once two heartbeat periods pass without one.
        return not self.offline and now - self.last_seen <= max(self.freq, 0.5) * 2 + 1

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "status": "online" if self.alive(now) else "offline",
            "last_seen": self.last_seen,
            "freq": self.freq,
            "loadavg": list(self.loadavg),
            "processed": self.processed,
            "active": self.active,
            "pid": self.pid,
            "software": self.software,
        }


@dataclass
class QueueInfo:
    name: str
    length: int | None = None
    #: (our time, length) samples, for the rate of change.
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=30))
    #: Our times of the task-sent events naming this queue (the rate in).
    sent: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def to_dict(self, now: float) -> dict[str, Any]:
        window = 10.0
        sent = sum(1 for t in self.sent if now - t <= window) / window
        change = None
        recent = [(t, n) for t, n in self.samples if now - t <= 30]
        if len(recent) >= 2 and recent[-1][0] > recent[0][0]:
            change = (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])
        return {"name": self.name, "length": self.length, "sent_rate": sent, "change": change}


@dataclass
class _Bucket:
    succeeded: int = 0
    failed: int = 0
    runtime_sum: float = 0.0
    runtime_n: int = 0
    wait_sum: float = 0.0
    wait_n: int = 0


class State:
    """The in-memory model, fed one event at a time by :meth:`apply`; safe across threads.

    ``version`` grows with every change, and each task remembers the version that last changed
    it, so a page that saw version ``v`` asks :meth:`changes_since` for just what is new.
    """

    def __init__(
        self,
        max_tasks: int = 10_000,
        bucket_seconds: float = 1.0,
        buckets: int = 300,
        clock: Any = time.time,
        max_workers: int = 1_000,
        max_queues: int = 1_000,
    ) -> None:
        self.max_tasks = max_tasks
        # Events are unauthenticated: anyone on the broker can invent worker and queue names.
        self.max_workers = max_workers
        self.max_queues = max_queues
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self.clock = clock
        self.lock = threading.Lock()
        self.version = 0
        self.events = 0
        #: Least recently changed first, so eviction drops what is stale.
        self.tasks: OrderedDict[str, TaskInfo] = OrderedDict()
        #: Least recently heard from first, so eviction drops workers long gone.
        self.workers: OrderedDict[str, WorkerInfo] = OrderedDict()
        self.queues: OrderedDict[str, QueueInfo] = OrderedDict()
        self._series: OrderedDict[int, _Bucket] = OrderedDict()

    # -- feeding ----------------------------------------------------------------------------------
    def apply(self, event: dict[str, Any]) -> None:
        """Take one event (a dict as Celery sends it); malformed ones are ignored."""
        kind = event.get("type")
        if not isinstance(kind, str):
            return
        now = self.clock()
        with self.lock:
            self.events += 1
            if kind.startswith("worker-"):
                self._worker_event(kind, event, now)
            elif kind.startswith("task-"):
                self._task_event(kind, event, now)

    def _worker(self, hostname: str) -> WorkerInfo:
        hostname = hostname[:255]
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerInfo(hostname)
            while len(self.workers) > self.max_workers:
                self.workers.popitem(last=False)
        else:
            self.workers.move_to_end(hostname)
        return worker

    def _worker_event(self, kind: str, event: dict[str, Any], now: float) -> None:
        hostname = event.get("hostname")
        if not isinstance(hostname, str) or not hostname:
            return
        worker = self._worker(hostname)
        worker.last_seen = now
        worker.offline = kind == "worker-offline"
        freq = _number(event.get("freq"))
        if freq is not None and freq > 0:
            worker.freq = freq
        load = event.get("loadavg")
        if isinstance(load, list | tuple):
            worker.loadavg = [round(v, 2) for v in (_number(x) for x in load[:3]) if v is not None]
        for name in ("processed", "active", "pid"):
            value = _count(event.get(name))
            if value is not None:
                setattr(worker, name, value)
        ident, ver = event.get("sw_ident"), event.get("sw_ver")
        if isinstance(ident, str):
            worker.software = _text(f"{ident} {ver}" if isinstance(ver, str) else ident, 100)
        self.version += 1

    def _task_event(self, kind: str, event: dict[str, Any], now: float) -> None:
        uuid = event.get("uuid")
        state = EVENT_STATES.get(kind)
        if not isinstance(uuid, str) or not uuid or state is None:
            return
        task = self.tasks.get(uuid)
        if task is None:
            task = TaskInfo(uuid)
            self.tasks[uuid] = task
            while len(self.tasks) > self.max_tasks:
                self.tasks.popitem(last=False)
        stamp = _number(event.get("timestamp")) or now
        hostname = event.get("hostname")
        if kind != "task-sent" and isinstance(hostname, str):
            # task-sent's hostname is the client's; every other task event comes from the worker.
            task.worker = _text(hostname, 255)
            worker = self._worker(hostname)
            worker.last_seen = now
            if worker.offline and kind in ("task-received", "task-started"):
                worker.offline = False
        # Events from two senders (client and worker) arrive in any order. Celery's rule: a state
        # that logically happens before the current one adds its fields but never moves the
        # state back; a retry moves it either way (the task runs again under the same id).
        if "RETRY" in (state, task.state) or _precedence(state) <= _precedence(task.state):
            task.state = state
        task.timestamps[_STAMPS[kind]] = stamp
        for name in ("name", "args", "kwargs", "eta", "expires", "root_id", "parent_id"):
            if event.get(name) is not None:
                setattr(task, name, _text(event[name], 255 if name == "name" else _TEXT_LIMIT))
        retries = _count(event.get("retries"))
        if retries is not None:
            task.retries = retries
        if kind == "task-sent":
            queue = event.get("queue") or event.get("routing_key")
            if isinstance(queue, str) and queue:
                task.queue = _text(queue, 255)
                self.queue(queue).sent.append(now)
        elif kind == "task-succeeded":
            task.result = _text(event.get("result"))
            task.runtime = _number(event.get("runtime"))
        elif kind in ("task-failed", "task-retried"):
            task.exception = _text(event.get("exception"))
            task.traceback = _text(event.get("traceback"), _TRACEBACK_LIMIT) or task.traceback
        elif kind == "task-revoked" and event.get("expired"):
            task.exception = "expired"
        if kind in ("task-succeeded", "task-failed"):
            self._record(now, task, kind == "task-succeeded")
        self.version += 1
        task.version = self.version
        self.tasks.move_to_end(uuid)

    def _record(self, now: float, task: TaskInfo, ok: bool) -> None:
        """Add a finished task to the throughput and latency series."""
        key = int(now // self.bucket_seconds)
        bucket = self._series.get(key)
        if bucket is None:
            bucket = self._series[key] = _Bucket()
            while len(self._series) > self.buckets:
                self._series.popitem(last=False)
        if ok:
            bucket.succeeded += 1
        else:
            bucket.failed += 1
        if task.runtime is not None:
            bucket.runtime_sum += task.runtime
            bucket.runtime_n += 1
        # Queue wait: received to started, both stamped by the same worker's clock.
        received, started = task.timestamps.get("received"), task.timestamps.get("started")
        if received is not None and started is not None and started >= received:
            bucket.wait_sum += started - received
            bucket.wait_n += 1

    def queue(self, name: str) -> QueueInfo:
        """The queue called ``name``, known from now on (call with the lock held or at setup)."""
        name = name[:255]
        info = self.queues.get(name)
        if info is None:
            info = self.queues[name] = QueueInfo(name)
            while len(self.queues) > self.max_queues:
                self.queues.popitem(last=False)
        else:
            self.queues.move_to_end(name)
        return info

    def set_queue_length(self, name: str, length: int | None) -> None:
        """A queue length measured on the broker (None: the broker cannot tell)."""
        now = self.clock()
        with self.lock:
            info = self.queue(name)
            if info.length != length:
                self.version += 1
            info.length = length
            if length is not None:
                info.samples.append((now, length))

    def note_retry(self, uuid: str, new_id: str) -> None:
        """Remember that the dashboard sent ``uuid`` again as ``new_id``."""
        with self.lock:
            task = self.tasks.get(uuid)
            if task is not None:
                task.retried_as = new_id
                self.version += 1
                task.version = self.version
                self.tasks.move_to_end(uuid)

    # -- reading ----------------------------------------------------------------------------------
    def task(self, uuid: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.tasks.get(uuid)
            return None if found is None else found.to_dict()

    def task_fields(self, uuid: str) -> TaskInfo | None:
        """A copy of one task's record."""
        with self.lock:
            found = self.tasks.get(uuid)
            if found is None:
                return None
            return TaskInfo(**{**found.__dict__, "timestamps": dict(found.timestamps)})

    def find_tasks(
        self,
        search: str | None = None,
        state: str | None = None,
        worker: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest tasks that match (``search`` looks in id, name, args, kwargs, worker)."""
        needle = (search or "").lower()
        found: list[dict[str, Any]] = []
        with self.lock:
            for task in reversed(self.tasks.values()):
                if state and task.state != state:
                    continue
                if worker and task.worker != worker:
                    continue
                if needle:
                    haystack = (task.uuid, task.name, task.args, task.kwargs, task.worker)
                    if not any(needle in h.lower() for h in haystack if h):
                        continue
                found.append(task.to_dict())
                if len(found) >= limit:
                    break
        return found

    def series(self) -> list[dict[str, Any]]:
        """Per bucket: start time, tasks succeeded and failed per second, mean runtime and wait."""
        with self.lock:
            return self._series_locked()

    def _series_locked(self) -> list[dict[str, Any]]:
        if not self._series:
            return []
        # Every bucket from the first kept to now: a quiet second is zero throughput, not a gap.
        last = int(self.clock() // self.bucket_seconds)
        first = max(next(iter(self._series)), last - self.buckets + 1)
        points = []
        for key in range(first, max(last, next(reversed(self._series))) + 1):
            b = self._series.get(key) or _Bucket()
            points.append(
                {
                    "t": key * self.bucket_seconds,
                    "succeeded": b.succeeded / self.bucket_seconds,
                    "failed": b.failed / self.bucket_seconds,
                    "runtime": b.runtime_sum / b.runtime_n if b.runtime_n else None,
                    "wait": b.wait_sum / b.wait_n if b.wait_n else None,
                }
            )
        return points

    def changes_since(self, version: int = 0, limit: int | None = None) -> dict[str, Any]:
        """Everything a page needs to catch up from ``version`` (0: a full snapshot)."""
        now = self.clock()
        with self.lock:
            tasks: list[dict[str, Any]] = []
            for task in reversed(self.tasks.values()):
                if task.version <= version or (limit is not None and len(tasks) >= limit):
                    break
                tasks.append(task.to_dict())
            counts: dict[str, int] = {}
            for task in self.tasks.values():
                counts[task.state] = counts.get(task.state, 0) + 1
            return {
                "version": self.version,
                "full": version == 0,
                "now": now,
                "events": self.events,
                "tasks": tasks,
                "counts": counts,
                "workers": [w.to_dict(now) for w in self.workers.values()],
                "queues": [q.to_dict(now) for q in self.queues.values()],
                "series": self._series_locked(),
            }


#: Celery's state precedence (``celery.states.PRECEDENCE``): first is strongest.
_PRECEDENCE = ("SUCCESS", "FAILURE", None, "REVOKED", "STARTED", "RECEIVED", "REJECTED", "RETRY",
               "PENDING")  # fmt: skip


def _precedence(state: str | None) -> int:
    try:
        return _PRECEDENCE.index(state)
    except ValueError:
        return _PRECEDENCE.index(None)
