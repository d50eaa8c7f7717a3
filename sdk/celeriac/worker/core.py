"""The worker's loop: fetch in batches, check each message into a :class:`Job`, hand it to a
:class:`Pool`, settle what the pool reports, all from one thread (see README.md here)."""

from __future__ import annotations

import collections
import heapq
import importlib
import itertools
import logging
import os
import queue as queue_module
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from celeriac.protocol.control import CONTROL_EXCHANGE, parse_control_request
from celeriac.protocol.limits import Limits
from celeriac.protocol.serializers import SERIALIZERS, loads
from celeriac.protocol.states import FAILURE, SUCCESS
from celeriac.transports import (
    BrokerUnavailable,
    Consumer,
    Delivery,
    QueueSpec,
    Transport,
    TransportError,
    open_transport,
)

from .. import signals
from ..events import worker_fields
from .autoscale import Autoscaler, parse_autoscale
from .boundary import safe_repr
from .checks import Checks, expired
from .execute import HOSTNAME, request_for
from .job import Job, Outcome
from .limits import TokenBucket
from .policy import Admission, Step
from .pool import Pool, PoolError, check_pool, make_pool
from .remote import CommandError, ControlPanel
from .revoked import RevokedSet

if TYPE_CHECKING:
    from ..app import App
    from ..config import Settings

__all__ = ["Worker"]

log = logging.getLogger("celeriac.worker")
# How often a busy worker reads its control channel (an idle one reads it every turn).
_CONTROL_EVERY = 0.02
#: Seconds the loop waits for the connections tasks published through before it acks them.
_CONFIRM_WAIT = 30.0


def signing_keys(app: App) -> dict[str, str]:
    """The keys a worker accepts signatures from; refuses to start with none."""
    keys = dict(app.conf.security_verify_keys)
    if app.conf.security_signing_key:
        keys[app.conf.security_signing_key_id] = app.conf.security_signing_key
    if not keys:
        raise ValueError(
            "security_require_signature is on but no key is set: set security_signing_key "
            "(or security_verify_keys)"
        )
    return keys


class Worker(Checks):
    """Consumes ``queues`` and runs their tasks with ``concurrency`` threads (or inline: solo)."""

    def __init__(
        self,
        app: App,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        pool: str | None = None,
        hostname: str | None = None,
        steps: Sequence[Step] = (),
        autoscale: tuple[int, int] | str | None = None,
    ) -> None:
        self.app = app
        self.queues = list(queues or [app.conf.task_default_queue])
        self.pool_name = pool or app.conf.worker_pool
        fixed = check_pool(self.pool_name, app)
        self.concurrency = fixed or concurrency or app.conf.worker_concurrency or 8
        self.prefetch = self.concurrency * max(app.conf.worker_prefetch_multiplier, 1)
        #: ``autoscale=(max, min)`` (or ``"max,min"``): the pool starts at min and follows the
        #: load, with the prefetch of max (as Celery's --autoscale).
        self.autoscaler: Autoscaler | None = None
        if autoscale is not None:
            if fixed:
                raise ValueError(f"autoscale: the {self.pool_name} pool cannot be resized")
            high, low = parse_autoscale(
                autoscale if isinstance(autoscale, str) else ",".join(map(str, autoscale))
            )
            self.concurrency = low
            self.prefetch = high * max(app.conf.worker_prefetch_multiplier, 1)
            self.autoscaler = Autoscaler(self, high, low)
        self.hostname = hostname or HOSTNAME
        self.accept = frozenset(SERIALIZERS[c].content_type for c in app.conf.accept_content)
        self.signing_keys = signing_keys(app) if app.conf.security_require_signature else None
        self.limits = Limits(
            max_message_bytes=app.conf.worker_max_message_bytes,
            max_depth=app.conf.worker_max_depth,
            max_arguments=app.conf.worker_max_arguments,
            max_items=app.conf.worker_max_decoded_items,
        )
        self.max_deliveries = app.conf.worker_max_deliveries
        if (
            not isinstance(self.max_deliveries, int)
            or isinstance(self.max_deliveries, bool)
            or not 1 <= self.max_deliveries <= 1000
        ):
            raise ValueError(
                f"worker_max_deliveries must be an integer from 1 to 1000, "
                f"not {self.max_deliveries!r}"
            )
        self.revoked = RevokedSet()
        #: The signal each task terminated while running was sent (task-revoked's ``signum``).
        self._signums: dict[str, int] = {}
        #: Where tasks run; made by run() (its resources are started there).
        self.pool: Pool | None = None
        self.processed = 0
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._done: queue_module.SimpleQueue[tuple[Job, Outcome]] = queue_module.SimpleQueue()
        self.ready = threading.Event()
        self.buckets: dict[str, TokenBucket | None] = {}
        # Each task's global_rate_limit, read once as its rate_limit is: not a setting, so
        # reading it through the settings raises and catches an AttributeError per call.
        self._shared_rates: dict[str, float | None] = {}
        # Each task's acks_late, soft_time_limit and time_limit options (raw: checked per
        # message, where they are used), read once per task name as its rate limits are.
        self._task_options: dict[str, tuple[bool, Any, Any]] = {}
        # Rate-limited deliveries waiting for a token: (when, seq, job).
        self.waiting: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        #: Tasks handed to the pool and not settled yet, by delivery: ``inspect active`` shows
        #: those the pool has started, ``inspect reserved`` the others (Celery's prefetch).
        self.active: dict[int, _Active] = {}
        #: Tasks run so far, by name (``inspect stats``).
        self.totals: collections.Counter[str] = collections.Counter()
        #: (soft, hard) time limits set by remote control, by task name.
        self.time_limits: dict[str, tuple[float | None, float | None]] = {}
        self.send_events = app.conf.worker_send_task_events
        self._heartbeat_at = 0.0
        self._new_queues: list[str] | None = None
        self._consumer: Consumer
        self._transport: Transport
        self.panel = ControlPanel(self)
        #: The worker's own checks, in order (see policy.py), then the users' steps.
        self.admission: tuple[Callable[[Admission], bool], ...] = (
            self._decoded,
            self._not_poison,
            self._recounted,
            self._announced,
            self._limits_read,
            self._due,
            self._rated,
        )
        self.steps: list[Step] = list(steps)
        # The checks above as built here: a worker whose admission was replaced runs it whole.
        self._own_checks = self.admission

    # -- what remote control reads and changes ----------------------------------------------------
    def describe(
        self, msg: Any, delivery: Delivery, started: float | None = None
    ) -> dict[str, Any]:
        """A task as ``inspect active``/``reserved`` show it (Celery's request fields); one not
        started yet has no ``time_start`` and no ``worker_pid`` (set for a started one by
        ``_Active``), as in Celery."""
        info = {"routing_key": delivery.queue, "exchange": "", "redelivered": delivery.redelivered}
        return {
            "id": msg.id,
            "name": msg.task,
            "args": list(msg.args),
            "kwargs": dict(msg.kwargs),
            "type": msg.task,
            "hostname": self.hostname,
            "time_start": started,
            "acknowledged": False,
            "delivery_info": info,
            "worker_pid": None,
        }

    def revoke(
        self, ids: Sequence[str], terminate: bool = False, signum: int = signal.SIGTERM
    ) -> None:
        """Never start these tasks; with ``terminate``, stop them where they run (the prefork
        pool sends ``signum``; task-revoked reports it, as Celery's)."""
        self.revoked.update(ids)
        if not terminate or self.pool is None:
            return
        for task_id in ids:
            if self.pool.terminate(task_id, signum):
                self._signums[task_id] = signum

    def task_names(self) -> list[str]:
        """The registered tasks' names."""
        return list(self.app.tasks)

    def counters(self) -> dict[str, Any]:
        """What ``inspect stats`` reports of this worker."""
        return {
            "total": dict(self.totals),
            "pool": self.pool_name,
            "prefetch": self.prefetch,
            "broker": self.app.conf.broker_url.split(":", 1)[0],
            "autoscaler": self.autoscaler.info() if self.autoscaler is not None else None,
        }

    def _running(self) -> list[_Active]:
        return [info for info in list(self.active.values()) if info.started is not None]

    def active_tasks(self) -> list[dict[str, Any]]:
        """Tasks the pool has started, as ``inspect active`` shows them."""
        return [dict(info) for info in self._running()]

    def reserved_tasks(self) -> list[dict[str, Any]]:
        """Tasks received and not started: waiting for their rate limit, or prefetched and
        waiting in the pool for a free slot (``inspect reserved``)."""
        waiting = [self.describe(job.message, job.delivery) for _, _, job in list(self.waiting)]
        held = [dict(i) for i in list(self.active.values()) if i.started is None]
        return waiting + held

    def revoked_ids(self) -> list[str]:
        """The revoked ids remembered (``inspect revoked``)."""
        return list(self.revoked)

    def set_rate_limit(self, task_name: str, rate: float | None) -> None:
        """Calls per second for ``task_name`` from now on (None: no limit)."""
        self.buckets[task_name] = None if rate is None else TokenBucket(rate)

    def set_time_limits(self, task_name: str, soft: float | None, hard: float | None) -> None:
        """Time limits for ``task_name`` (checked by the caller), over the message's."""
        self.time_limits[task_name] = (soft, hard)

    def set_events(self, enabled: bool) -> None:
        """Send task events from now on, or stop."""
        self.send_events = enabled

    def settings(self) -> Settings:
        """The settings this worker runs with."""
        return self.app.conf

    def pool_pids(self) -> list[int]:
        """The pids of the pool's child processes (empty when tasks run in this process)."""
        return list(getattr(self.pool, "pids", None) or [])

    def rate_limits(self) -> dict[str, float]:
        """The tasks that have a rate limit, and their calls per second."""
        return {name: b.rate for name, b in list(self.buckets.items()) if b is not None}

    def running_ids(self) -> set[str]:
        """Ids of the tasks running now."""
        return {info["id"] for info in self._running()}

    def heartbeat(self) -> None:
        """Send a ``worker-heartbeat`` event now (``control heartbeat``)."""
        self._emit("worker-heartbeat", **worker_fields(len(self._running()), self.processed))

    def restart_pool(self, modules: Sequence[str] | None = None, reload: bool = False) -> None:
        """Celery's ``pool_restart``: import the task modules not imported yet (``reload``:
        reload the others), set rate limits back to the tasks' own, and replace the pool's
        processes so they run the code loaded now."""
        if modules is None:  # the modules the app's own tasks come from, not Celeriac's
            names = {t.__module__ for t in self.app.tasks.values()} - {"__main__", "builtins"}
            modules = sorted(n for n in names if n.split(".")[0] not in ("celeriac", "celery"))
        for name in modules:
            module = sys.modules.get(name)
            if module is None:
                importlib.import_module(name)
            elif reload:
                importlib.reload(module)
        self.buckets.clear()  # read again from each task's rate_limit when next needed
        if self.pool is not None:
            self.pool.restart()

    def held(self) -> int:
        """Tasks received and not settled: running, waiting in the pool or for a rate limit."""
        return len(self.active) + len(self.waiting)

    def scale_to(self, concurrency: int) -> bool:
        """The autoscaler's resize: the pool only (the prefetch is max's); False if refused."""
        if self.pool is None:
            return False
        try:
            self.pool.resize(concurrency)
        except PoolError as exc:
            log.debug("%s: autoscale to %d refused: %s", self.hostname, concurrency, exc)
            return False
        self.concurrency = concurrency
        return True

    def autoscale(self, high: int, low: int) -> tuple[int, int]:
        """``autoscale`` remote command: new bounds for the autoscaler; without one (no
        ``--autoscale``), the pool is resized to ``high`` and stays there."""
        if self.autoscaler is None:
            self.resize(high)
            return high, low
        try:
            bounds = self.autoscaler.update(high, low)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.prefetch = bounds[0] * max(self.app.conf.worker_prefetch_multiplier, 1)
        self.change_queues(self.queues)  # a consumer with the new prefetch
        return bounds

    def change_queues(self, queues: Sequence[str]) -> None:
        """Consume ``queues`` from now on (the switch happens once nothing is in flight)."""
        self._new_queues = list(queues)

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` tasks at once (when the pool can change its size)."""
        if self.pool is None:
            raise CommandError("the worker has not started its pool yet")
        try:
            self.pool.resize(concurrency)
        except PoolError as exc:
            raise CommandError(str(exc)) from None
        self.concurrency = concurrency
        self.prefetch = concurrency * max(self.app.conf.worker_prefetch_multiplier, 1)
        self.change_queues(self.queues)  # a consumer with the new prefetch

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Warm shutdown: take nothing new, finish what runs, give back what waits."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: warm shutdown; a second one: stop at once (cold)."""

        def handle(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise SystemExit(1)
            log.warning(
                "%s: warm shutdown (signal %d); again to stop at once", self.hostname, signum
            )
            how = {"sig": signal.Signals(signum).name, "how": "Warm", "exitcode": 0}
            signals.worker_shutting_down.send(self.hostname, **how)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _connect(self) -> Transport:
        """Open the broker, retrying while it is unreachable (Celery's
        ``broker_connection_retry_on_startup`` and ``broker_connection_max_retries``)."""
        conf = self.app.conf
        attempts = (
            conf.broker_connection_max_retries if conf.broker_connection_retry_on_startup else 0
        )
        pause = 0.1
        for attempt in range((attempts or 0) + 1):
            options = conf.broker_options()
            if options.get("publish_window"):
                # The loop's own publishes (a requeued copy, then the original acked) each
                # wait for the broker. Tasks publish through the app's pool, windowed, and
                # _settle flushes it before acking them.
                options["publish_window"] = 0
            try:
                return open_transport(conf.broker_url, **options)
            except BrokerUnavailable as exc:
                if attempt == attempts or self._stop.is_set():
                    raise
                log.warning("%s: %s; retry %d in %.1f s", self.hostname, exc, attempt + 1, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)
        raise AssertionError("unreachable")

    def run(self) -> None:
        """Consume until ``stop()``; then settle everything in flight and close."""
        self._pid = os.getpid()  # where a task that runs in this process runs (read per task)
        transport = self._connect()
        self._transport = transport
        try:
            for q in self.queues:
                transport.declare_queue(QueueSpec(q))
            control = transport.subscribe(CONTROL_EXCHANGE)
            self._consumer = transport.consumer(self.queues, prefetch=self.prefetch)
            pool = make_pool(self.pool_name, self.app, self.concurrency, self.revoked,
                             self.hostname)  # fmt: skip
            self.pool = pool
            if hasattr(pool, "on_start"):  # the pool says when a task really starts
                pool.on_start = self._started
            self._emit("worker-online", **worker_fields(0, self.processed))
            signals.worker_ready.send(self)
            self.ready.set()
            threading.Thread(target=self._warn_if_name_taken, name="celeriac-name-check",
                             daemon=True).start()  # fmt: skip
            log.info(
                "%s ready: queues %s, %s pool x%d",
                self.hostname,
                self.queues,
                self.pool_name,
                self.concurrency,
            )
            try:
                self._loop(transport, control, pool)
            finally:
                pool.close()
                self._settle(self._consumer, block=False)
                self._consumer.close()
                control.close()
        finally:
            self._emit("worker-offline", **worker_fields(0, self.processed))
            signals.worker_shutdown.send(self)
            transport.close()
            self.app.close()

    def _warn_if_name_taken(self) -> None:
        """Warn when another worker answers to this worker's name (Celery warns too): remote
        control, events and the dashboard cannot tell two such workers apart."""
        try:
            answers = self.app.control.call(
                "ping",
                {"celeriac_probe": self.panel.probe},
                destination=[self.hostname],
                timeout=1.0,
                limit=1,
            )
        except Exception as exc:  # a check, never a reason to stop
            log.debug("%s: could not check for a worker of the same name: %s", self.hostname, exc)
            return
        finally:
            # The check's connection (and on Kafka its clients' threads, ~2 MB) would outlive
            # this thread otherwise.
            self.app.close_thread_connection()
        if answers:
            log.warning(
                "%s: another worker already uses this node name; give each worker its own "
                "with -n (e.g. -n w1@%%h), or remote control and monitoring will mix them up",
                self.hostname,
            )

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self, transport: Transport, control: Any, pool: Pool) -> None:
        in_flight = 0
        pause = 0.1
        control_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= control_at:
                # Not every turn: polling the control channel costs a broker read, and a
                # busy loop turns thousands of times a second.
                control_at = now + _CONTROL_EVERY
                self._control(control, transport)
            if time.monotonic() >= self._heartbeat_at:
                self._heartbeat_at = time.monotonic() + 2.0  # Celery's heartbeat frequency
                self.heartbeat()
                signals.heartbeat_sent.send(self)
            if self._new_queues is not None and in_flight == 0 and not self.waiting:
                self._switch_consumer(transport)
            consumer = self._consumer
            in_flight -= self._settle(consumer, block=False)
            self._release_waiting(pool)
            if self.autoscaler is not None:
                self.autoscaler.tick(now)
            room = self.prefetch - in_flight
            # With no room, fetch(0) still runs: transports renew leases and liveness there, so
            # deliveries held by long tasks are not given to another consumer.
            try:
                deliveries = consumer.fetch(
                    room, timeout=(0.05 if in_flight else 0.5) if room else 0
                )
            except TransportError as exc:
                # The transport reconnects on the next call; wait a little between attempts.
                log.warning("%s: fetch failed (%s); retrying in %.1f s", self.hostname, exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.1
            if not deliveries and in_flight >= self.prefetch:
                in_flight -= self._settle(consumer, block=True, timeout=0.5)
            # A message that arrives alone at an idle worker may run in this thread (a quick
            # task: the pool decides), saving the hop to a pool thread in its round trip.
            if len(deliveries) == 1 and in_flight:  # the last task may be done, not settled
                in_flight -= self._settle(consumer, block=False)
            alone = in_flight == 0 and len(deliveries) == 1
            if deliveries:
                in_flight += self._dispatch(transport, consumer, deliveries, pool, alone)
        consumer = self._consumer
        for _, _, job in self.waiting:  # not started: back to the queue
            self._guarded("requeue", consumer.requeue, job.delivery)
            in_flight -= 1
        self.waiting.clear()
        while in_flight > 0:  # warm shutdown: what was started finishes and is settled
            in_flight -= self._settle(consumer, block=True, timeout=1.0)

    def _switch_consumer(self, transport: Transport) -> None:
        """Consume the queues (and prefetch) remote control asked for; nothing is in flight."""
        queues, self._new_queues = self._new_queues or self.queues, None
        try:
            for q in queues:
                transport.declare_queue(QueueSpec(q))
            fresh = transport.consumer(queues, prefetch=self.prefetch)
        except TransportError as exc:
            log.warning("%s: could not switch to queues %s: %s", self.hostname, queues, exc)
            return
        self._consumer.close()
        self._consumer, self.queues = fresh, list(queues)
        log.info("%s: now consuming %s (prefetch %d)", self.hostname, queues, self.prefetch)

    def _dispatch(
        self,
        transport: Transport,
        consumer: Consumer,
        deliveries: Sequence[Delivery],
        pool: Pool,
        alone: bool = False,
    ) -> int:
        """Admit a fetched batch, ack those acked before they run (in one call), then start
        them; return how many are now held (the others were settled on the spot).

        The per-message boundary: nothing in a message, the task's settings or the broker's
        reply to a republish escapes from here; the message is dead-lettered with the reason.
        """
        held = 0
        admitted: list[tuple[Job, float]] = []
        for delivery in deliveries:
            try:
                result = self._admit(Admission(transport, consumer, delivery))
            except Exception as exc:  # anything a message can provoke
                log.exception(
                    "%s: could not dispatch a message on %s", self.hostname, delivery.queue
                )
                self._dead_letter(consumer, delivery, f"worker-error: {safe_repr(exc)}")
                continue
            if result is None:
                continue
            held += 1
            job, wait, refused = result
            if refused is not None:  # a user's step decided: settled on the next turn
                self._done.put((job, refused))
            else:
                admitted.append((job, wait))
        # Acked before they run (acks_late=False): one call for the batch, as late acks are.
        early = [job.delivery for job, _ in admitted if not job.acks_late]
        if early:
            self._guarded("ack", consumer.ack, early)
        for job, wait in admitted:
            if wait > 0:
                heapq.heappush(self.waiting, (time.monotonic() + wait, next(self._seq), job))
            else:
                self._start(job, pool, alone)
        return held

    def _admit(self, a: Admission) -> tuple[Job, float, Outcome | None] | None:
        """Run the worker's checks, then the users' steps: the job, the seconds its rate limit
        makes it wait, and an outcome when a step settled it; None when a check settled the
        message itself. Settles nothing when it raises."""
        checks = self.admission
        if checks is self._own_checks and self._plain:
            # Decoded first, as always; a plain message then skips the checks that cannot fire.
            if not self._decoded(a):
                return None
            job = self._plain_job(a)
            if job is not None:
                return job, 0.0, None
            checks = checks[1:]
        for check in checks:
            if not check(a):
                return None
        assert a.message is not None
        task = a.task
        late = self._options(a.message.task, task)[0] if task is not None else True
        if signals.task_received:
            request = request_for(a.message, a.delivery.queue, self.hostname, task)
            signals.task_received.send(self, request=request)
        job = Job(a.delivery, a.message, task, late, a.soft_limit, a.hard_limit, self.hostname)
        for step in self.steps:
            try:
                outcome = step.before(job)
            except Exception:  # a user's step: logged, and the message goes on
                log.exception("%s: step %r failed before %s", self.hostname, step, job.id)
                continue
            if outcome is not None:
                return job, 0.0, outcome
        return job, a.wait, None

    def _release_waiting(self, pool: Pool) -> None:
        """Start the rate-limited deliveries whose token is due."""
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            _, _, job = heapq.heappop(self.waiting)
            try:
                wait = self._rate_wait(job.name, job.task)
            except Exception as exc:  # a global limit's store may be down
                log.warning("%s: rate limit of %s unreadable: %s", self.hostname, job.name, exc)
                wait = 1.0
            if wait > 0:
                heapq.heappush(self.waiting, (now + wait, next(self._seq), job))
                return
            self._start(job, pool)

    def _start(self, job: Job, pool: Pool, alone: bool = False) -> None:
        """Hand a job to the pool; a pool that fails to take it gives it back, counted.
        ``alone``: the worker holds nothing else, so a pool that can may run it right here."""
        self.active[id(job.delivery)] = _Active(self, job.message, job.delivery)
        if getattr(pool, "on_start", None) is None:
            self._started(job)
        try:
            run_here = getattr(pool, "run_here", None) if alone else None
            if run_here is None or not run_here(job, self._finished):
                pool.submit(job, self._finished)
        except Exception as exc:  # the pool refused it (closed, broken pipe)
            log.exception("%s: could not start %s", self.hostname, job.id)
            self._done.put((job, Outcome("requeue", f"worker-error: {safe_repr(exc)}")))

    def _started(self, job: Job, pid: int | None = None) -> None:
        """The pool starts ``job`` now (called from where it runs): it moves from ``reserved``
        to ``active``, and task-started is sent (never for a revoked one)."""
        info = self.active.get(id(job.delivery))
        if info is not None:
            info.begin(pid or self._pid)
        if (
            self.send_events
            and job.task is not None
            and job.id not in self.revoked
            and not expired(job.message)
        ):
            self._emit("task-started", uuid=job.id)

    def _finished(self, job: Job, outcome: Outcome) -> None:
        """A pool's report (from any thread): the loop settles it on its next turn."""
        self._done.put((job, outcome))

    def _settle(self, consumer: Consumer, block: bool, timeout: float = 0.0) -> int:
        """Ack, reject or requeue finished deliveries (acks batched); return how many.

        What their tasks published is confirmed by the broker first. A broker error while
        settling is logged, not raised: the broker gives the delivery again (at least once),
        and the worker goes on.
        """
        done: list[tuple[Job, Outcome]] = []
        try:
            done.append(self._done.get(timeout=timeout) if block else self._done.get_nowait())
            while True:
                done.append(self._done.get_nowait())
        except queue_module.Empty:
            if not done:
                return 0
        unconfirmed = self._confirm_sent()
        acks: list[Delivery] = []
        for job, outcome in done:
            if unconfirmed is not None and job.acks_late and outcome.action != "requeue":
                outcome = Outcome("requeue", unconfirmed)
            if self.steps:
                outcome = self._after(job, outcome)
            delivery = job.delivery
            self.processed += 1
            info = self.active.pop(id(delivery), None)
            signum = self._signums.pop(job.id, None) if self._signums else None
            if info is not None:
                if job.task is not None:  # names a client invents are not kept
                    self.totals[job.name] += 1
                if self.send_events:
                    self._task_event(info, outcome, signum)
            if not job.acks_late:
                pass  # acked before it ran
            elif outcome.action in ("ack", "retry"):
                acks.append(delivery)
            elif outcome.action == "dead-letter":
                log.error("%s: rejected %s: %s", self.hostname, delivery.queue, outcome.reason)
                self._guarded("reject", consumer.reject, delivery, outcome.reason)
            else:
                self._give_back(self._transport, consumer, delivery, outcome.reason)
        if acks:
            self._guarded("ack", consumer.ack, acks)
        return len(done)

    def _confirm_sent(self) -> str | None:
        """Wait until the broker confirmed what tasks published through the app's pool (with a
        ``publish_window``, ``delay()`` returns before that); nothing to do when they published
        nothing. The reason to requeue the tasks when the broker did not confirm, else None."""
        pool = self.app._producers
        if pool is None or not pool.sent:
            return None
        try:
            # Bounded: a connection a stuck task holds (past its hard time limit, abandoned
            # in a publish) must not stop the loop; its tasks go back to the queue instead.
            pool.flush_sent(timeout=_CONFIRM_WAIT)
        except Exception as exc:
            log.error("%s: what tasks sent was not confirmed: %s", self.hostname, exc)
            return f"worker-error: what the task sent was not confirmed: {safe_repr(exc)}"
        return None

    def _after(self, job: Job, outcome: Outcome) -> Outcome:
        """The users' steps see the outcome last to first (as they wrap the call)."""
        for step in reversed(self.steps):
            try:
                outcome = step.after(job, outcome)
            except Exception:  # a user's step: logged, and the outcome stands
                log.exception("%s: step %r failed after %s", self.hostname, step, job.id)
        return outcome

    def _task_event(self, info: _Active, outcome: Outcome, signum: int | None = None) -> None:
        """The event that tells how a task ended (SPEC.md §9)."""
        uuid, start = info["id"], info.started
        runtime = 0.0 if start is None else time.time() - start
        if outcome.reason.startswith("unknown-task"):
            name = info["name"]
            self._emit("task-failed", uuid=uuid, exception=f"NotRegistered({name!r})", traceback="")
        elif outcome.reason.startswith("rejected-by-task: "):
            # As Celery 5.7: a task that rejects for good failed (the backend holds FAILURE).
            if outcome.state == FAILURE:
                exception = outcome.reason.removeprefix("rejected-by-task: ")
                self._emit("task-failed", uuid=uuid, exception=exception,
                           traceback=outcome.traceback)  # fmt: skip
            self._emit("task-rejected", uuid=uuid, requeue=outcome.action == "requeue")
        elif outcome.action == "dead-letter":
            self._emit("task-rejected", uuid=uuid, requeue=False)
        elif outcome.action == "requeue":
            pass  # given back (counted) to run again: it has not ended
        elif outcome.state == SUCCESS:
            self._emit(
                "task-succeeded", uuid=uuid, result=safe_repr(outcome.value, 1024), runtime=runtime
            )
        elif outcome.action == "retry":
            exception = outcome.reason.removeprefix("retry: ")
            self._emit("task-retried", uuid=uuid, exception=exception, traceback=outcome.traceback)
        elif outcome.state == "REVOKED":
            self._emit(
                "task-revoked",
                uuid=uuid,
                terminated=outcome.reason == "revoked",  # stopped while it ran
                signum=signum if outcome.reason == "revoked" else None,
                expired=outcome.reason == "expired",
            )
        else:
            exception = outcome.reason.removeprefix("failed: ")
            if exception == "time-limit":  # what the pools store for a hard limit
                exception = "TimeLimitExceeded('hard time limit exceeded')"
            self._emit("task-failed", uuid=uuid, exception=exception, traceback=outcome.traceback)

    def _control(self, control: Any, transport: Transport) -> None:
        """Carry out the control commands (revoke, inspect, ...) that arrived since last turn."""
        while True:
            try:
                message = control.get(timeout=0)
            except TransportError as exc:  # the subscription reconnects on the next call
                log.warning("%s: control channel: %s", self.hostname, exc)
                return
            if message is None:
                return
            try:
                request = parse_control_request(
                    loads(message.body, message.content_type, message.content_encoding)
                )
                mine = request.is_for(self.hostname)
            except Exception as exc:  # anyone may broadcast anything
                log.warning("%s: ignored a malformed control message: %s", self.hostname, exc)
                continue
            if mine:
                self.panel.handle(request, transport)


class _Active(Mapping[str, Any]):
    """A task handed to the pool as ``inspect active``/``reserved`` show it, built only when
    someone asks (most never are: building it for every task cost about 5% of a no-op drain)."""

    __slots__ = ("_delivery", "_full", "_msg", "_worker", "pid", "started")

    def __init__(self, worker: Worker, msg: Any, delivery: Delivery) -> None:
        self._worker, self._msg, self._delivery = worker, msg, delivery
        #: When the pool started it (time.time()); None while it waits for a slot.
        self.started: float | None = None
        #: The process that runs it (a prefork child's), once started.
        self.pid: int | None = None
        self._full: dict[str, Any] | None = None

    def begin(self, pid: int) -> None:
        """The pool starts the task now, in process ``pid``."""
        self.started = time.time()
        self.pid = pid
        self._full = None

    def _info(self) -> dict[str, Any]:
        full = self._full
        if full is None:
            full = self._worker.describe(self._msg, self._delivery, self.started)
            full["worker_pid"] = self.pid
            self._full = full
        return full

    def __getitem__(self, key: str) -> Any:
        if key == "name":
            return self._msg.task
        if key == "id":
            return self._msg.id
        return self._info()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._info())

    def __len__(self) -> int:
        return len(self._info())


def run_worker(app: App, **options: Any) -> Worker:
    """Start a worker in a background thread and wait until it consumes (for tests, demos)."""
    worker = Worker(app, **options)
    thread = threading.Thread(target=worker.run, name="celeriac-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(30):
        raise RuntimeError("the worker did not start within 30 s")
    worker.thread = thread  # type: ignore[attr-defined]
    return worker


def stop_worker(worker: Worker, timeout: float = 30) -> None:
    """Warm-stop a worker started by run_worker and wait for it."""
    worker.stop()
    worker.thread.join(timeout)  # type: ignore[attr-defined]
    if worker.thread.is_alive():  # type: ignore[attr-defined]
        raise RuntimeError(f"the worker did not stop within {timeout} s")


__all__ += ["run_worker", "stop_worker"]
