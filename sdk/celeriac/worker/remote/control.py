"""The control commands (``celery control ...``): revoke tasks, change limits, queues, the pool
and events, shut down; each checks its arguments and raises CommandError with the reason."""

from __future__ import annotations

import logging
import signal as signals
from typing import Any

from ..boundary import BadNumber, check_seconds, safe_repr
from ..limits import parse_rate
from .controlled import CommandError, Controlled

log = logging.getLogger("celeriac.worker")

#: Most task ids one revoke may name, and the largest pool a command may ask for.
_MAX_IDS = 10_000
_MAX_CONCURRENCY = 1_000


def _check_queue(queue: Any) -> None:
    if not isinstance(queue, str) or not queue or len(queue) > 255:
        raise CommandError("queue must be a queue name (a string of 1 to 255 characters)")


def _count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_CONCURRENCY:
        raise CommandError(f"n must be an integer from 1 to {_MAX_CONCURRENCY}")
    return n


class ControlCommands:
    """The commands that change a worker."""

    worker: Controlled

    def revoke(
        self, task_id: Any = None, terminate: bool = False, signal: Any = None, **_: Any
    ) -> dict[str, str]:
        ids = [task_id] if isinstance(task_id, str) else task_id
        if not isinstance(ids, list | tuple) or not all(isinstance(i, str) and i for i in ids):
            raise CommandError("task_id must be a task id or a list of task ids (strings)")
        if len(ids) > _MAX_IDS:
            raise CommandError(f"at most {_MAX_IDS} task ids per revoke, not {len(ids)}")
        if terminate:
            signum = _signum(signal)  # a bad signal name changes nothing
            running = self.worker.running_ids() & set(ids)
            self.worker.revoke(ids, terminate=True, signum=signum)
            if not running:
                return {"ok": "terminate: tasks unknown"}
            return {"ok": f"terminate: tasks {', '.join(sorted(running))} flagged as revoked"}
        self.worker.revoke(ids)
        return {"ok": f"tasks {', '.join(ids)} flagged as revoked"}

    def terminate(self, signal: Any = None, task_id: Any = None, **_: Any) -> dict[str, str]:
        """Celery's ``terminate(signal, task_id)``; the signal is checked, the pool decides how
        the task stops (docs/operations.md says where it can)."""
        return self.revoke(task_id, terminate=True, signal=signal)

    def revoke_by_stamped_headers(self, headers: Any = None, **_: Any) -> dict[str, str]:
        return {"error": "revoke_by_stamped_headers: Celeriac workers do not support stamping"}

    def rate_limit(self, task_name: str, rate_limit: Any, **_: Any) -> dict[str, str]:
        if task_name not in self.worker.task_names():
            raise CommandError(f"unknown task {task_name!r}")
        try:
            rate = parse_rate(rate_limit)
        except ValueError as exc:
            raise CommandError(f"invalid rate limit {safe_repr(rate_limit, 64)}: {exc}") from None
        self.worker.set_rate_limit(task_name, rate)
        if rate is None:
            return {"ok": "rate limit disabled successfully"}
        return {"ok": "new rate limit set successfully"}

    def time_limit(
        self, task_name: str, soft: float | None = None, hard: float | None = None, **_: Any
    ) -> dict[str, str]:
        if task_name not in self.worker.task_names():
            raise CommandError(f"unknown task {task_name!r}")
        try:
            limits = (check_seconds(soft, "soft"), check_seconds(hard, "hard"))
        except BadNumber as exc:
            raise CommandError(f"invalid time limit: {exc}") from None
        self.worker.set_time_limits(task_name, *limits)
        return {"ok": "time limits set successfully"}

    def add_consumer(self, queue: str, **_: Any) -> dict[str, str]:
        _check_queue(queue)
        if queue in self.worker.queues:
            return {"ok": f"already consuming from {queue!r}"}
        self.worker.change_queues([*self.worker.queues, queue])
        return {"ok": f"add consumer {queue}"}

    def cancel_consumer(self, queue: str, **_: Any) -> dict[str, str]:
        _check_queue(queue)
        if queue not in self.worker.queues:
            raise CommandError(f"not consuming from {queue!r}")
        if len(self.worker.queues) == 1:
            raise CommandError("cannot cancel the last queue; shut the worker down instead")
        self.worker.change_queues([q for q in self.worker.queues if q != queue])
        return {"ok": f"no longer consuming from {queue}"}

    def pool_grow(self, n: int = 1, **_: Any) -> dict[str, str]:
        n = _count(n)
        if self.worker.concurrency + n > _MAX_CONCURRENCY:
            raise CommandError(f"the pool cannot grow past {_MAX_CONCURRENCY}")
        self.worker.resize(self.worker.concurrency + n)
        return {"ok": f"pool will grow to {self.worker.concurrency}"}

    def pool_shrink(self, n: int = 1, **_: Any) -> dict[str, str]:
        n = _count(n)
        if self.worker.concurrency - n < 1:
            raise CommandError("the pool cannot shrink below one")
        self.worker.resize(self.worker.concurrency - n)
        return {"ok": f"pool will shrink to {self.worker.concurrency}"}

    def autoscale(self, max: Any = None, min: Any = None, **_: Any) -> dict[str, str]:
        """New bounds for a worker started with ``--autoscale``; without an autoscaler the pool
        is set to ``max`` (what Celery's would reach under load) and stays there."""
        high = _count(int(max) if isinstance(max, str) and max.isdigit() else max)
        low = _count(int(min) if isinstance(min, str) and min.isdigit() else (min or 1))
        if low > high:
            raise CommandError(f"min ({low}) must not exceed max ({high})")
        high, low = self.worker.autoscale(high, low)
        return {"ok": f"autoscale now max={high} min={low}"}

    def pool_restart(
        self, modules: Any = None, reload: Any = False, reloader: Any = None, **_: Any
    ) -> dict[str, str]:
        """Celery's: refused unless ``worker_pool_restarts`` is on (Celery's error text)."""
        if not self.worker.settings().worker_pool_restarts:
            return {"error": "ValueError('Pool restarts not enabled')"}
        if reloader is not None:
            raise CommandError("pool_restart: a Celeriac worker takes no custom reloader")
        if modules is not None and (
            not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules)
        ):
            raise CommandError("modules must be a list of module names")
        try:
            self.worker.restart_pool(None if modules is None else list(modules), bool(reload))
        except ImportError as exc:
            raise CommandError(f"pool_restart: {exc}") from None
        return {"ok": "reload started"}

    def election(self, **_: Any) -> dict[str, str]:
        return {"error": "election: Celeriac workers do not run gossip"}

    def heartbeat(self, **_: Any) -> None:
        """Send a ``worker-heartbeat`` event now (Celery replies nothing)."""
        self.worker.heartbeat()

    def shutdown(self, **_: Any) -> dict[str, str]:
        log.warning("%s: shutdown requested remotely", self.worker.hostname)
        self.worker.stop()
        return {"ok": "shutting down"}

    def enable_events(self, **_: Any) -> dict[str, str]:
        if self.worker.send_events:
            return {"ok": "task events already enabled"}
        self.worker.set_events(True)
        return {"ok": "task events enabled"}

    def disable_events(self, **_: Any) -> dict[str, str]:
        if not self.worker.send_events:
            return {"ok": "task events already disabled"}
        self.worker.set_events(False)
        return {"ok": "task events disabled"}


def _signum(name: Any) -> int:
    """A signal given as Celery does (``"SIGKILL"``, ``"KILL"`` or a number), checked."""
    if name is None:
        return int(signals.SIGTERM)
    if isinstance(name, int) and not isinstance(name, bool):
        try:
            return int(signals.Signals(name))
        except ValueError:
            pass
    if isinstance(name, str):
        upper = name.upper()
        key = upper if upper.startswith("SIG") else f"SIG{upper}"
        if hasattr(signals.Signals, key):
            return int(signals.Signals[key])
    raise CommandError(f"signal must be a signal name such as SIGTERM or SIGKILL, not {name!r}")
