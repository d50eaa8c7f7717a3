"""The dashboard's engine: a thread feeding events into the :class:`State`, a thread measuring
queues, and the actions (revoke, rate limit, shutdown, retry) sent as remote-control commands."""

from __future__ import annotations

import ast
import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from celeriac.transports import redact_url

from ..events import EventReceiver
from .state import State

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ActionError", "Dashboard", "parse_arguments"]

log = logging.getLogger("celeriac.dashboard")

_RATE = re.compile(r"^\d+(\.\d+)?(/[smh])?$")
_SIGNALS = frozenset({"SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"})
_NAME_LIMIT = 255
RETRYABLE_STATES = frozenset({"FAILURE", "REVOKED"})
_NEEDS_RECORD = (
    "retry sends the name and arguments its worker stored: it needs the result backend "
    "(--backend) and workers with result_extended=True"
)


class ActionError(Exception):
    """An action the dashboard refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _NAME_LIMIT:
        raise ActionError(400, f"{what} must be a string of 1 to {_NAME_LIMIT} characters")
    return value


def parse_arguments(
    args_repr: str | None, kwargs_repr: str | None
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """A task's arguments back from the reprs its events carry, when they are plain literals.

    ``ast.literal_eval`` evaluates literals only (no names, calls or attributes), so an untrusted
    repr can at worst fail to parse; None when they do not, or were shortened for display.
    """
    try:
        args = ast.literal_eval(args_repr) if args_repr else ()
        kwargs = ast.literal_eval(kwargs_repr) if kwargs_repr else {}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple) or not isinstance(kwargs, dict):
        return None
    if not all(isinstance(k, str) for k in kwargs):
        return None
    return args, kwargs


class Dashboard:
    """Watches one broker: ``start()`` the threads, read :attr:`state`, call the actions."""

    def __init__(
        self,
        app: App,
        *,
        queues: Iterable[str] = (),
        max_tasks: int = 10_000,
        poll_interval: float = 2.0,
        reply_timeout: float = 1.0,
        enable_events: bool = False,
    ) -> None:
        self.app = app
        self.state = State(max_tasks=max_tasks)
        self.poll_interval = poll_interval
        self.reply_timeout = reply_timeout
        self.enable_events = enable_events
        #: True while the event stream is connected; ``error`` says why when it is not.
        self.connected = False
        self.error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for name in (*queues, app.conf.task_default_queue):
            self.state.queue(name)

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start consuming events and measuring queues in daemon threads."""
        for target, name in ((self._consume, "events"), (self._poll, "queues")):
            thread = threading.Thread(target=target, name=f"celeriac-dashboard-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _consume(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with EventReceiver(self.app) as receiver:
                    self.connected, self.error = True, None
                    backoff = 0.5
                    while not self._stop.is_set():
                        found = receiver.next(timeout=0.5)
                        if found is not None:
                            self.state.apply(found)
            except Exception as exc:  # a broker outage must not end the dashboard: retry
                self.connected, self.error = False, f"event stream: {exc}"
                log.warning("dashboard: %s; retrying in %.1f s", self.error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.connected = False

    def _poll(self) -> None:
        turns = 0
        while not self._stop.is_set():
            if turns % 30 == 0:  # each minute or so: workers started since, and their queues
                self._discover()
            turns += 1
            self.measure_queues()
            self._stop.wait(self.poll_interval)

    def _discover(self) -> None:
        try:
            if self.enable_events:
                self.app.control.broadcast("enable_events")
            # Short: this runs on the thread that measures queues, and on every stop.
            replies = self.app.control.inspect(timeout=min(self.reply_timeout, 1.0)).active_queues()
        except Exception as exc:
            log.warning("dashboard: could not ask workers for their queues: %s", exc)
            return
        with self.state.lock:
            for reply in replies.values():
                for queue in reply if isinstance(reply, list) else ():
                    name = queue.get("name") if isinstance(queue, dict) else None
                    if isinstance(name, str) and name and len(name) <= _NAME_LIMIT:
                        self.state.queue(name)

    def measure_queues(self) -> None:
        """Ask the broker how long each known queue is (None where it cannot tell)."""
        with self.state.lock:
            names = list(self.state.queues)
        transport = self.app.producer()
        for name in names:
            try:
                length: int | None = transport.queue_length(name)
            except Exception:  # NotImplementedError, a queue that does not exist, an outage
                length = None
            self.state.set_queue_length(name, length)

    def info(self) -> dict[str, Any]:
        """What the page header shows (URLs without passwords)."""
        conf = self.app.conf
        return {
            "broker": redact_url(conf.broker_url or ""),
            "backend": redact_url(conf.result_backend) if conf.result_backend else None,
            "connected": self.connected,
            "error": self.error,
            "max_tasks": self.state.max_tasks,
        }

    # -- actions ----------------------------------------------------------------------------------
    def revoke(self, task_id: Any, terminate: bool = False, signal: Any = "SIGTERM") -> Any:
        """Tell every worker not to run ``task_id`` (and to stop it, with ``terminate``)."""
        task_id = _name(task_id, "task id")
        signal = signal or "SIGTERM"
        if signal not in _SIGNALS:
            raise ActionError(400, f"signal must be one of {', '.join(sorted(_SIGNALS))}")
        arguments = {"task_id": [task_id], "terminate": bool(terminate), "signal": signal}
        return self._ask("revoke", arguments, None)

    def rate_limit(self, task_name: Any, rate: Any, worker: Any = None) -> Any:
        """Set (or with an empty ``rate``, lift) a task's rate limit on one worker or all."""
        task_name = _name(task_name, "task name")
        if rate in (None, ""):
            rate = None
        elif not isinstance(rate, str) or not _RATE.match(rate):
            raise ActionError(400, "rate must look like 10/s, 100/m, 1000/h or 5 (per second)")
        destination = [_name(worker, "worker")] if worker else None
        return self._ask("rate_limit", {"task_name": task_name, "rate_limit": rate}, destination)

    def _ask(
        self, method: str, arguments: dict[str, Any], destination: list[str] | None
    ) -> dict[str, Any]:
        """Send a command and gather replies: until every worker addressed (or, for all, every
        worker the events show alive) answered, or the reply timeout."""
        if destination:
            expected: int | None = len(destination)
        else:
            now = self.state.clock()
            with self.state.lock:
                expected = sum(w.alive(now) for w in self.state.workers.values()) or None
        return self.app.control.call(
            method,
            arguments,
            destination=destination,
            timeout=self.reply_timeout,
            limit=expected,
        )

    def shutdown(self, worker: Any) -> None:
        """Warm-stop one worker."""
        self.app.control.shutdown(destination=[_name(worker, "worker")])

    def retry(self, task_id: Any) -> str:
        """Send a failed or revoked task again, as a new task, with the name, arguments and
        queue its worker stored in the result backend (``result_extended``); return its id.

        Events are not signed, so anyone who can publish to the broker can forge them: the
        task is never re-sent from what an event says, and is refused (409) when the backend
        holds no extended record of it or the record and the events disagree."""
        task_id = _name(task_id, "task id")
        task = self.state.task_fields(task_id)
        if task is None:
            raise ActionError(404, "no such task")
        if task.state not in RETRYABLE_STATES:
            raise ActionError(409, f"only a failed or revoked task is retried, not {task.state}")
        name, args, kwargs, queue = self._stored_call(task_id, task.state)
        if task.name and task.name != name:
            raise ActionError(
                409,
                f"the events name this task {task.name!r} and its worker stored {name!r}: "
                "the events are not trusted, so it is not retried",
            )
        said = parse_arguments(task.args, task.kwargs)
        if said is not None and said != (args, kwargs):
            raise ActionError(
                409,
                "the events' arguments differ from those its worker stored: the events are "
                "not trusted, so it is not retried",
            )
        options: dict[str, Any] = {"queue": queue} if queue else {}
        result = self.app.send_task(name, args, kwargs, **options)
        self.state.note_retry(task_id, result.id)
        return result.id

    def _stored_call(
        self, task_id: str, state: str
    ) -> tuple[str, tuple[Any, ...], dict[str, Any], str | None]:
        """(name, args, kwargs, queue) from the task's extended result record; ActionError
        when there is none to read or it does not say the task ended as the events say."""
        if not self.app.conf.result_backend:
            raise ActionError(409, _NEEDS_RECORD + " (this dashboard has no --backend)")
        try:
            record = self.app.backend.get(task_id)
        except Exception as exc:  # the backend is down: say so, send nothing
            raise ActionError(503, f"the result backend could not be read: {exc}") from None
        extended = record.extended
        name, args, kwargs = extended.get("name"), extended.get("args"), extended.get("kwargs")
        if not (
            isinstance(name, str)
            and name
            and isinstance(args, list | tuple)
            and isinstance(kwargs, dict)
            and all(isinstance(k, str) for k in kwargs)
        ):
            raise ActionError(409, _NEEDS_RECORD + " (the backend holds none for this task)")
        if record.status != state:
            raise ActionError(
                409,
                f"the events say {state} and the result backend says {record.status}: "
                "the events are not trusted, so it is not retried",
            )
        queue = extended.get("queue")
        return name, tuple(args), dict(kwargs), queue if isinstance(queue, str) else None
