"""The inspect commands (``celery inspect ...``): what a worker runs, holds and is set to, in
Celery's reply shapes."""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import time
from typing import Any

from ... import __version__
from ...config import Settings
from ...events import clock_value
from .controlled import Controlled
from .replies import _broker_info, _censored, _queue_info, _rss_bytes


class InspectCommands:
    """The commands that read a worker and change nothing."""

    worker: Controlled
    #: When the panel started (``time.monotonic()``), for ``stats``' uptime.
    started: float

    def ping(self, **_: Any) -> dict[str, str]:
        return {"ok": "pong"}

    def stats(self, **_: Any) -> dict[str, Any]:
        """Celery's ``stats`` shape: Flower's worker page reads every key below."""
        w = self.worker
        counters = w.counters()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "total": counters["total"],
            "pid": os.getpid(),
            "clock": str(clock_value()),
            "uptime": int(time.monotonic() - self.started),
            "pool": {
                "implementation": counters["pool"],
                "max-concurrency": w.concurrency,
                "processes": w.pool_pids() or [os.getpid()],
                "max-tasks-per-child": "N/A",
                "put-guarded-by-semaphore": False,
                "timeouts": [0, 0],
            },
            **({"autoscaler": counters["autoscaler"]} if counters.get("autoscaler") else {}),
            "prefetch_count": counters["prefetch"],
            "broker": _broker_info(w.settings().broker_url),
            "rusage": {
                name[3:]: getattr(usage, name) for name in dir(usage) if name.startswith("ru_")
            },
        }

    def active(self, **_: Any) -> list[dict[str, Any]]:
        return self.worker.active_tasks()

    def reserved(self, **_: Any) -> list[dict[str, Any]]:
        return self.worker.reserved_tasks()

    def scheduled(self, **_: Any) -> list[dict[str, Any]]:
        return []  # ETA tasks wait in the broker, not in this worker's memory

    def registered(self, taskinfoitems: Any = None, **_: Any) -> list[str]:
        return sorted(n for n in self.worker.task_names() if not n.startswith("celery."))

    def active_queues(self, **_: Any) -> list[dict[str, Any]]:
        """Kombu's ``Queue.as_dict(recurse=True)`` keys, as Celery replies."""
        return [_queue_info(q) for q in self.worker.queues]

    def revoked(self, **_: Any) -> list[str]:
        return sorted(self.worker.revoked_ids())

    def conf(self, with_defaults: bool = False, **_: Any) -> dict[str, Any]:
        """The settings (only those changed from the defaults, unless ``with_defaults``),
        secrets masked, as Celery's ``conf`` replies."""
        conf = self.worker.settings()
        defaults = Settings()
        table: dict[str, Any] = {}
        for f in dataclasses.fields(conf):
            if f.name == "not_applicable":
                continue
            value = getattr(conf, f.name)
            if with_defaults or value != getattr(defaults, f.name):
                table[f.name] = _censored(f.name, value)
        return table

    def report(self, **_: Any) -> dict[str, str]:
        lines = [
            f"software -> celeriac:{__version__} py:{platform.python_version()}",
            f"platform -> system:{platform.system()} arch:{platform.machine()}",
            f"settings -> transport:{_broker_info(self.worker.settings().broker_url)['transport']}",
            "",
            *(f"{k}: {v!r}" for k, v in sorted(self.conf().items())),
        ]
        return {"ok": "\n" + "\n".join(lines) + "\n"}

    def clock(self, **_: Any) -> dict[str, int]:
        return {"clock": clock_value()}

    def memsample(self, **_: Any) -> str:
        return f"{_rss_bytes() / 2**20:.2f}MiB"

    def memdump(self, samples: Any = 10, **_: Any) -> str:
        return f"- rss: {self.memsample()}.\n"

    def dump_tasks(self, taskinfoitems: Any = None, **_: Any) -> list[str]:
        names = self.registered()
        limited = self.worker.rate_limits()
        return [f"{n} [rate_limit={limited[n]}]" if n in limited else n for n in names]

    def objgraph(self, **_: Any) -> dict[str, str]:
        return {"error": "objgraph is not available in Celeriac workers"}

    def query_task(self, ids: Any = None, **_: Any) -> dict[str, Any]:
        wanted = {ids} if isinstance(ids, str) else set(ids or ())
        found: dict[str, Any] = {}
        for info in self.worker.active_tasks():
            if info["id"] in wanted:
                found[info["id"]] = ["active", info]
        for entry in self.reserved():
            if entry["id"] in wanted:
                found[entry["id"]] = ["reserved", entry]
        return found
