"""The worker's side of remote control (SPEC.md §10): Celery's commands and reply shapes, so
``celery inspect`` and ``celery control`` work against a Celeriac worker and ``celeriac inspect``
against a Celery one.

A command that fails, is unknown, or has bad arguments gets ``{"error": "..."}``; the worker goes
on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import resource
import signal as signals
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from celeriac.protocol import WireMessage
from celeriac.protocol.control import ControlRequest, reply_queue
from celeriac.protocol.serializers import dumps
from celeriac.transports import Transport

from .. import __version__
from ..config import Settings
from ..events import clock_value
from .boundary import BadNumber, check_seconds, safe_repr
from .limits import parse_rate

__all__ = ["ControlPanel"]

log = logging.getLogger("celeriac.worker")

Handler = Callable[..., Any]


class Controlled(Protocol):
    """What remote control may read and change in a worker: this, and nothing else."""

    hostname: str
    queues: list[str]
    concurrency: int

    def task_names(self) -> list[str]:
        """The registered tasks' names."""

    def counters(self) -> dict[str, Any]:
        """``total`` (tasks run by name), ``pool`` (its kind), ``prefetch``, ``broker`` (scheme)."""

    def active_tasks(self) -> list[dict[str, Any]]:
        """Tasks running, as ``inspect active`` shows them."""

    def reserved_tasks(self) -> list[dict[str, Any]]:
        """Tasks received and waiting for their rate limit."""

    def revoked_ids(self) -> list[str]:
        """The revoked task ids this worker remembers."""

    def revoke(
        self, ids: Sequence[str], terminate: bool = False, signum: int = signals.SIGTERM
    ) -> None:
        """Never start these tasks; with ``terminate``, stop them where they run (``signum``:
        the signal a prefork child is sent)."""

    def set_rate_limit(self, task_name: str, rate: float | None) -> None:
        """Calls per second for ``task_name`` (None: no limit)."""

    def set_time_limits(self, task_name: str, soft: float | None, hard: float | None) -> None:
        """Time limits for ``task_name``, over the message's and the task's."""

    def change_queues(self, queues: Sequence[str]) -> None:
        """Consume ``queues`` from now on."""

    def autoscale(self, high: int, low: int) -> tuple[int, int]:
        """New autoscaler bounds (without an autoscaler: resize to ``high``); the bounds set."""

    def restart_pool(self, modules: Sequence[str] | None = None, reload: bool = False) -> None:
        """Import (or reload) task modules, reset rate limits, replace the pool's processes."""

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` tasks at once; CommandError when the pool cannot."""

    def set_events(self, enabled: bool) -> None:
        """Send task events, or stop sending them."""

    def stop(self) -> None:
        """Warm shutdown."""

    send_events: bool

    def settings(self) -> Settings:
        """The worker's settings (read only)."""

    def pool_pids(self) -> list[int]:
        """The pids of the pool's processes (empty for pools that run in this process)."""

    def rate_limits(self) -> dict[str, float]:
        """Task name to calls per second, for the tasks that have a rate limit."""

    def running_ids(self) -> set[str]:
        """Ids of the tasks running now."""

    def heartbeat(self) -> None:
        """Send a ``worker-heartbeat`` event now."""


class CommandError(Exception):
    """A command that cannot be carried out as asked; its text is the error reply."""


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


class ControlPanel:
    """Carries out control commands for one worker and sends the replies."""

    def __init__(self, worker: Controlled) -> None:
        self.worker = worker
        self.started = time.monotonic()
        #: Marks the ping this worker sends at start to find another worker with its name.
        self.probe = uuid.uuid4().hex
        self.handlers: dict[str, Handler] = {
            "ping": self.ping,
            "stats": self.stats,
            "active": self.active,
            "reserved": self.reserved,
            "scheduled": self.scheduled,
            "registered": self.registered,
            "active_queues": self.active_queues,
            "revoked": self.revoked,
            "query_task": self.query_task,
            "revoke": self.revoke,
            "terminate": self.terminate,
            "rate_limit": self.rate_limit,
            "time_limit": self.time_limit,
            "add_consumer": self.add_consumer,
            "cancel_consumer": self.cancel_consumer,
            "pool_grow": self.pool_grow,
            "pool_shrink": self.pool_shrink,
            "shutdown": self.shutdown,
            "enable_events": self.enable_events,
            "disable_events": self.disable_events,
            "heartbeat": self.heartbeat,
            "conf": self.conf,
            "report": self.report,
            "clock": self.clock,
            "memsample": self.memsample,
            "memdump": self.memdump,
            "dump_tasks": self.dump_tasks,
            "objgraph": self.objgraph,
            "autoscale": self.autoscale,
            "pool_restart": self.pool_restart,
            "election": self.election,
            "revoke_by_stamped_headers": self.revoke_by_stamped_headers,
        }

    # -- dispatch --------------------------------------------------------------------------------
    def handle(self, request: ControlRequest, transport: Transport) -> None:
        """Run a request meant for this worker and reply if the sender asked for one."""
        probe = request.arguments.get("celeriac_probe") if request.method == "ping" else None
        if probe is not None and probe == self.probe:
            return  # our own "is this name taken?" ping: only another worker may answer it
        handler = self.handlers.get(request.method)
        if handler is None:
            reply: Any = {"error": f"unknown control command {request.method!r}"}
            log.warning("%s: %s", self.worker.hostname, reply["error"])
        else:
            try:
                reply = handler(**dict(request.arguments))
            except TypeError as exc:
                reply = {"error": f"bad arguments for {request.method!r}: {exc}"}
            except CommandError as exc:
                reply = {"error": str(exc)}
            except Exception as exc:  # a command must never take the worker down
                log.exception("%s: control command %r failed", self.worker.hostname, request.method)
                reply = {"error": f"{type(exc).__name__}: {exc}"}
        if request.reply_to and request.ticket:
            self._reply(request, reply, transport)

    def _reply(self, request: ControlRequest, reply: Any, transport: Transport) -> None:
        assert request.reply_to is not None
        routing_key = str(request.reply_to.get("routing_key") or "")
        body, content_type, content_encoding = dumps({self.worker.hostname: reply})
        message = WireMessage(
            body,
            content_type,
            content_encoding,
            {"ticket": request.ticket, "clock": 0},
            {"correlation_id": request.ticket},
        )
        try:
            transport.publish(reply_queue(routing_key), message)
        except Exception as exc:  # the asker went away with its queue
            log.warning("%s: reply to %s not sent: %s", self.worker.hostname, routing_key, exc)

    # -- inspection ------------------------------------------------------------------------------
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

    # -- control ---------------------------------------------------------------------------------
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


_SECRET_WORDS = ("password", "secret", "key", "token", "signature", "auth")


def _censored(name: str, value: Any) -> Any:
    """A setting as ``conf`` shows it: secrets masked, URLs without passwords, JSON-safe."""
    if isinstance(value, str) and "://" in value:
        return _mask_url(value)
    if any(word in name.lower() for word in _SECRET_WORDS) and value:
        return "********"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_censored(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _censored(str(k), v) for k, v in value.items()}
    return safe_repr(value, 200)


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return parts._replace(netloc=netloc).geturl()


def _broker_info(url: Any) -> dict[str, Any]:
    """Kombu's ``Connection.info()`` keys for the first broker URL (no password)."""
    first = url[0] if isinstance(url, list | tuple) else str(url).split(";")[0]
    parts = urlsplit(first)
    if "," in parts.netloc:  # redis+cluster://a:1,b:2/: the first node
        parts = parts._replace(netloc=parts.netloc.split(",", 1)[0])
    try:
        port = parts.port
    except ValueError:
        port = None
    return {
        "hostname": parts.hostname,
        "userid": parts.username,
        "virtual_host": parts.path.lstrip("/") or "/",
        "port": port,
        "insist": False,
        "ssl": parts.scheme in ("rediss", "amqps", "rediss+cluster"),
        "transport": parts.scheme or "memory",
        "connect_timeout": 4,
        "transport_options": {},
        "login_method": None,
        "uri_prefix": None,
        "heartbeat": None,
        "failover_strategy": "round-robin",
        "alternates": [],
        "credential_provider": None,
    }


def _queue_info(name: str) -> dict[str, Any]:
    exchange = {
        "name": name,
        "type": "direct",
        "arguments": None,
        "durable": True,
        "passive": False,
        "auto_delete": False,
        "delivery_mode": None,
        "no_declare": False,
    }
    return {
        "name": name,
        "exchange": exchange,
        "routing_key": name,
        "queue_arguments": None,
        "binding_arguments": None,
        "consumer_arguments": None,
        "durable": True,
        "exclusive": False,
        "auto_delete": False,
        "no_ack": False,
        "alias": None,
        "bindings": [],
        "no_declare": None,
        "expires": None,
        "message_ttl": None,
        "max_length": None,
        "max_length_bytes": None,
        "max_priority": None,
    }


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


def _rss_bytes() -> int:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
