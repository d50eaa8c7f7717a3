"""The worker's main loop: fetch in batches, run in a pool, settle from the consumer thread."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import logging
import os
import queue as queue_module
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celeriac.protocol import ProtocolError, decode_task
from celeriac.protocol.control import CONTROL_EXCHANGE, parse_control_request
from celeriac.protocol.limits import Limits
from celeriac.protocol.serializers import SERIALIZERS, loads
from celeriac.protocol.signing import verify
from celeriac.protocol.states import SUCCESS
from celeriac.protocol.wire import BROKER_DELAYED_HEADER, mark_broker_delayed
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
from ..events import event, send_event, worker_fields
from ..exceptions import (
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)
from .asyncio_pool import AsyncioPool
from .boundary import (
    DELIVERY_COUNT_HEADER,
    MAX_DELAY,
    BadNumber,
    check_seconds,
    deliveries,
    safe_repr,
)
from .execute import HOSTNAME, Outcome, execute, store_failure
from .limits import Running, TokenBucket, Watchdog, parse_rate
from .prefork import PreforkPool
from .remote import CommandError, ControlPanel

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Worker"]

log = logging.getLogger("celeriac.worker")
# Threads beside the asyncio pool, for sync tasks and for storing results without blocking it.
_ASYNC_SIDE_THREADS = 8
# A message due this close to now runs at once rather than going back for the wait.
_ETA_SLACK = 0.05
# How often a busy worker reads its control channel (an idle one reads it every turn).
_CONTROL_EVERY = 0.02
#: A task on its way to a pool: delivery, decoded message, acks late, seconds its rate limit
#: still makes it wait, and its checked (soft, hard) time limits.
_Job = tuple[Delivery, Any, bool, float, tuple[float | None, float | None]]


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


def _reason(error: ProtocolError) -> str:
    kind = {
        "DecodeError": "decode-error",
        "ContentDisallowed": "content-disallowed",
        "UnsupportedContentType": "content-disallowed",
        "UnsupportedCompression": "unsupported-compression",
        "LimitExceeded": "limit-exceeded",
        "SignatureError": "signature-invalid",
    }.get(type(error).__name__, "invalid-message")
    return f"{kind}: {error}"


class Worker:
    """Consumes ``queues`` and runs their tasks with ``concurrency`` threads (or inline: solo)."""

    def __init__(
        self,
        app: App,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        pool: str | None = None,
        hostname: str | None = None,
    ) -> None:
        options = app.conf.broker_transport_options
        if options.get("publish_window"):
            # A task's ack must not come before the broker has what the task sent (its chain's
            # next step, its callbacks): the worker's publishes each wait for the broker.
            rest = {k: v for k, v in options.items() if k != "publish_window"}
            app.conf = app.conf.replace(broker_transport_options=rest)
        self.app = app
        self.queues = list(queues or [app.conf.task_default_queue])
        self.pool_name = pool or app.conf.worker_pool
        if self.pool_name not in ("threads", "solo", "asyncio", "prefork"):
            raise ValueError(
                f"unknown pool {self.pool_name!r}; choose prefork, threads, asyncio or solo"
            )
        if self.pool_name == "prefork":
            shared = [("broker", app.conf.broker_url), ("result backend", app.conf.result_backend)]
            for kind, url in shared:
                if (url or "").startswith("memory:"):
                    raise ValueError(
                        f"the prefork pool runs tasks in other processes, which cannot reach a "
                        f"memory:// {kind}; use sqlite://, redis:// or another shared one"
                    )
        self.concurrency = (
            1 if self.pool_name == "solo" else (concurrency or app.conf.worker_concurrency or 8)
        )
        self.prefetch = self.concurrency * max(app.conf.worker_prefetch_multiplier, 1)
        self.hostname = hostname or HOSTNAME
        self.accept = frozenset(SERIALIZERS[c].content_type for c in app.conf.accept_content)
        self.signing_keys = signing_keys(app) if app.conf.security_require_signature else None
        self.limits = Limits(
            max_message_bytes=app.conf.worker_max_message_bytes,
            max_depth=app.conf.worker_max_depth,
            max_arguments=app.conf.worker_max_arguments,
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
        self.revoked: set[str] = set()
        self.processed = 0
        self._stop = threading.Event()
        self._done: queue_module.SimpleQueue[tuple[Delivery, Outcome]] = queue_module.SimpleQueue()
        self.ready = threading.Event()
        self.aio: AsyncioPool | None = None
        self.prefork: PreforkPool | None = None
        self.running: dict[str, Running] = {}
        self.watchdog: Watchdog | None = None
        self.buckets: dict[str, TokenBucket | None] = {}
        # Rate-limited deliveries waiting for a token: (when, seq, job).
        self.waiting: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        #: Tasks started and not settled yet, by delivery, as ``inspect active`` shows them.
        self.active: dict[int, Mapping[str, Any]] = {}
        #: Tasks run so far, by name (``inspect stats``).
        self.totals: collections.Counter[str] = collections.Counter()
        #: (soft, hard) time limits set by remote control, by task name.
        self.time_limits: dict[str, tuple[float | None, float | None]] = {}
        self.send_events = app.conf.worker_send_task_events
        self._heartbeat_at = 0.0
        self.executor: ThreadPoolExecutor | None = None
        self._new_queues: list[str] | None = None
        self._consumer: Consumer
        self._transport: Transport
        self.panel = ControlPanel(self)

    # -- what remote control reads and changes ----------------------------------------------------
    def describe(self, msg: Any, delivery: Delivery) -> dict[str, Any]:
        """A task as ``inspect active``/``reserved`` show it (Celery's request fields)."""
        info = {"routing_key": delivery.queue, "exchange": "", "redelivered": delivery.redelivered}
        return {
            "id": msg.id,
            "name": msg.task,
            "args": list(msg.args),
            "kwargs": dict(msg.kwargs),
            "type": msg.task,
            "hostname": self.hostname,
            "time_start": time.time(),
            "acknowledged": False,
            "delivery_info": info,
            "worker_pid": os.getpid(),
        }

    def revoke(self, ids: Sequence[str], terminate: bool = False) -> None:
        """Never start these tasks; with ``terminate``, stop them where they run."""
        self.revoked.update(ids)
        if not terminate:
            return
        for task_id in ids:
            running = self.running.get(task_id)
            if running is not None:
                running.interrupt(TaskRevokedError)
            if self.aio is not None:
                self.aio.cancel(task_id)
            if self.prefork is not None:
                self.prefork.terminate(task_id)

    def change_queues(self, queues: Sequence[str]) -> None:
        """Consume ``queues`` from now on (the switch happens once nothing is in flight)."""
        self._new_queues = list(queues)

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` tasks at once (thread pool only)."""
        if self.pool_name != "threads" or self.executor is None:
            raise CommandError(f"the {self.pool_name} pool cannot be resized at run time")
        self.concurrency = concurrency
        self.prefetch = concurrency * max(self.app.conf.worker_prefetch_multiplier, 1)
        # ThreadPoolExecutor starts threads as work arrives, up to this bound.
        self.executor._max_workers = max(self.executor._max_workers, concurrency)
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
            try:
                return open_transport(conf.broker_url, **dict(conf.broker_transport_options))
            except BrokerUnavailable as exc:
                if attempt == attempts or self._stop.is_set():
                    raise
                log.warning("%s: %s; retry %d in %.1f s", self.hostname, exc, attempt + 1, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)
        raise AssertionError("unreachable")

    def run(self) -> None:
        """Consume until ``stop()``; then settle everything in flight and close."""
        transport = self._connect()
        self._transport = transport
        try:
            for q in self.queues:
                transport.declare_queue(QueueSpec(q))
            control = transport.subscribe(CONTROL_EXCHANGE)
            self._consumer = transport.consumer(self.queues, prefetch=self.prefetch)
            threads = self.concurrency if self.pool_name == "threads" else _ASYNC_SIDE_THREADS
            executor = (
                ThreadPoolExecutor(threads, thread_name_prefix="celeriac-task")
                if self.pool_name != "solo"
                else None
            )
            self.executor = executor
            if self.pool_name == "asyncio" and executor is not None:
                self.aio = AsyncioPool(self.app, executor, self.concurrency, self.hostname)
            if self.pool_name == "prefork":
                self.prefork = PreforkPool(self.app, self.concurrency, self.hostname)
            self.watchdog = Watchdog(SoftTimeLimitExceeded, TimeLimitExceeded)
            self._emit("worker-online", **worker_fields(0, self.processed))
            signals.worker_ready.send(self)
            self.ready.set()
            log.info(
                "%s ready: queues %s, %s pool x%d",
                self.hostname,
                self.queues,
                self.pool_name,
                self.concurrency,
            )
            try:
                self._loop(transport, control, executor)
            finally:
                if self.prefork is not None:
                    self.prefork.close()
                if self.watchdog is not None:
                    self.watchdog.stop()
                if self.aio is not None:
                    self.aio.close()
                if executor is not None:
                    executor.shutdown(wait=True, cancel_futures=False)
                self._settle(self._consumer, block=False)
                self._consumer.close()
                control.close()
        finally:
            self._emit("worker-offline", **worker_fields(0, self.processed))
            signals.worker_shutdown.send(self)
            transport.close()
            self.app.close()

    # -- the loop ------------------------------------------------------------------------------
    def _loop(
        self,
        transport: Transport,
        control: Any,
        executor: ThreadPoolExecutor | None,
    ) -> None:
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
            if self.send_events and time.monotonic() >= self._heartbeat_at:
                self._heartbeat_at = time.monotonic() + 2.0  # Celery's heartbeat frequency
                self._emit("worker-heartbeat", **worker_fields(len(self.active), self.processed))
            if self._new_queues is not None and in_flight == 0 and not self.waiting:
                self._switch_consumer(transport)
            consumer = self._consumer
            in_flight -= self._settle(consumer, block=False)
            self._release_waiting(executor)
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
            for delivery in deliveries:
                if self._dispatch(transport, consumer, delivery, executor):
                    in_flight += 1
        consumer = self._consumer
        for _, _, job in self.waiting:  # not started: back to the queue
            self._guarded("requeue", consumer.requeue, job[0])
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
        delivery: Delivery,
        executor: ThreadPoolExecutor | None,
    ) -> bool:
        """Start a delivery's task; False when it was settled on the spot.

        The per-message boundary: nothing in the message, the task's settings or the broker's
        reply to a republish escapes from here; the message is dead-lettered with the reason.
        """
        try:
            job = self._admit(transport, consumer, delivery)
        except Exception as exc:  # anything a message can provoke
            log.exception("%s: could not dispatch a message on %s", self.hostname, delivery.queue)
            self._dead_letter(consumer, delivery, f"worker-error: {safe_repr(exc)}")
            return False
        if job is None:
            return False
        delivery, _msg, late, wait, _limits = job
        if not late:
            self._guarded("ack", consumer.ack, [delivery])
        if wait > 0:
            heapq.heappush(self.waiting, (time.monotonic() + wait, next(self._seq), job))
            return True
        self._start_guarded(job, executor)
        return True

    def _start_guarded(self, job: _Job, executor: ThreadPoolExecutor | None) -> None:
        """Start a job; a pool that fails to take it gives the delivery back, counted."""
        try:
            self._start(job, executor)
        except Exception as exc:  # the pool refused it (closed, broken pipe)
            log.exception("%s: could not start %s", self.hostname, job[1].id)
            late = job[2]
            outcome = Outcome("requeue", f"worker-error: {safe_repr(exc)}")
            self._done.put((job[0], outcome if late else Outcome("ack", "acked early")))

    def _admit(self, transport: Transport, consumer: Consumer, delivery: Delivery) -> _Job | None:
        """Check and decode a delivery; None when it was settled here (refused, or sent back
        to wait for its ETA). Settles nothing when it raises."""
        if delivery.message is None:
            log.error(
                "%s: unreadable envelope on %s: %s", self.hostname, delivery.queue, delivery.error
            )
            self._dead_letter(consumer, delivery, f"malformed-envelope: {delivery.error}")
            return None
        try:
            if self.signing_keys is not None:
                verify(delivery.message, self.signing_keys)
            msg = decode_task(delivery.message, accept=self.accept, limits=self.limits)
        except ProtocolError as exc:
            log.error("%s: rejected a message on %s: %s", self.hostname, delivery.queue, exc)
            self._dead_letter(consumer, delivery, _reason(exc))
            return None
        count = deliveries(delivery)
        if count > self.max_deliveries:
            # Given back more often than allowed (each worker that took it died, or its task
            # kept asking to be requeued): poison. Run again, it would loop forever.
            why = f"delivered {count} times (worker_max_deliveries={self.max_deliveries})"
            self._refuse(consumer, delivery, msg, f"poison: {why}", WorkerLostError(why))
            return None
        if self.send_events:
            h = msg.headers
            self._emit(
                "task-received",
                uuid=msg.id,
                name=msg.task,
                args=h.argsrepr or safe_repr(msg.args, 1024),
                kwargs=h.kwargsrepr or safe_repr(msg.kwargs, 1024),
                root_id=h.root_id,
                parent_id=h.parent_id,
                retries=h.retries,
                eta=h.eta.isoformat() if h.eta else None,
                expires=h.expires.isoformat() if h.expires else None,
            )
        task = self.app.tasks.get(msg.task)
        try:
            limits = self._limits(msg, task)
            wait = self._rate_wait(msg.task, task)
            eta = self._eta_wait(msg)
        except BadNumber as exc:
            self._refuse(consumer, delivery, msg, f"limit-out-of-range: {exc}", exc)
            return None
        if eta is not None:
            # A message the broker held until its time is due by the broker's clock, whatever ours
            # says (skewed, or jumped back): running it beats holding it for the difference.
            held = bool(delivery.message.headers.get(BROKER_DELAYED_HEADER))
            trusted = held and self.signing_keys is None  # the marker is not signed
            if eta > _ETA_SLACK and not trusted:
                # Not due yet (a client that does not delay natively): the broker holds it.
                transport.publish(delivery.queue, mark_broker_delayed(delivery.message), delay=eta)
                consumer.ack([delivery])
                return None
        late = bool(task.option("acks_late", True)) if task is not None else True
        return delivery, msg, late, wait, limits

    def _eta_wait(self, msg: Any) -> float | None:
        """Seconds until the message's ETA (None: it has none); refuses one past MAX_DELAY."""
        eta = msg.headers.eta
        if eta is None:
            return None
        try:
            aware = eta if eta.tzinfo else eta.replace(tzinfo=UTC)
            wait = (aware - datetime.now(UTC)).total_seconds()
        except OverflowError:  # a date so near year 1 or 9999 that its offset overflows
            raise BadNumber(f"eta {eta.isoformat()} is out of range") from None
        if wait > MAX_DELAY:
            raise BadNumber(f"eta {eta.isoformat()} is more than {MAX_DELAY:.0f} s away")
        return float(wait)

    def _refuse(
        self,
        consumer: Consumer,
        delivery: Delivery,
        msg: Any,
        reason: str,
        exc: BaseException,
    ) -> None:
        """Dead-letter a decoded message the worker will not run, and store it as FAILURE so
        its caller learns why (one attempt: the loop must not wait on a backend outage)."""
        log.error("%s: %s[%s] refused: %s", self.hostname, msg.task, msg.id, reason)
        try:
            store_failure(self.app, msg, exc)
        except Exception as error:  # the dead letter still says why
            log.warning("%s: failure of %s not stored: %s", self.hostname, msg.id, error)
        self._dead_letter(consumer, delivery, reason)

    def _dead_letter(self, consumer: Consumer, delivery: Delivery, reason: str) -> None:
        message = delivery.message
        uuid = message.headers.get("id") if message is not None else None
        self._guarded("reject", consumer.reject, delivery, reason)
        self._emit("task-rejected", uuid=uuid if isinstance(uuid, str) else None, requeue=False)

    def _give_back(
        self, transport: Transport, consumer: Consumer, delivery: Delivery, reason: str
    ) -> None:
        """Requeue a delivery, counted: a copy with ``x-delivery-count`` goes to the back of
        its queue and the original is acked, so every broker counts it (a classic RabbitMQ
        queue only flags redeliveries). Past ``worker_max_deliveries``: poison."""
        message = delivery.message
        count = deliveries(delivery)
        if message is None:
            self._dead_letter(consumer, delivery, f"worker-error: {reason}")
            return
        if count >= self.max_deliveries:
            why = f"delivered {count} times (worker_max_deliveries={self.max_deliveries}): {reason}"
            try:
                msg = decode_task(message, accept=self.accept, limits=self.limits)
            except ProtocolError:
                self._dead_letter(consumer, delivery, f"poison: {why}")
            else:
                self._refuse(consumer, delivery, msg, f"poison: {why}", WorkerLostError(why))
            return
        headers = {**message.headers, DELIVERY_COUNT_HEADER: count}
        try:
            transport.publish(delivery.queue, dataclasses.replace(message, headers=headers))
        except TransportError as exc:
            log.warning("%s: requeue of a delivery failed: %s", self.hostname, exc)
            self._guarded("requeue", consumer.requeue, delivery)
            return
        self._guarded("ack", consumer.ack, [delivery])

    def _rate_wait(self, name: str, task: Any) -> float:
        """Seconds until the task's rate limit lets another call start (0: now)."""
        if name not in self.buckets:
            try:
                rate = parse_rate(task.option("rate_limit") if task is not None else None)
            except ValueError as exc:
                raise BadNumber(f"task {name!r}: {exc}") from None
            self.buckets[name] = None if rate is None else TokenBucket(rate)
        bucket = self.buckets[name]
        wait = 0.0 if bucket is None else bucket.take()
        if wait > 0 or task is None:
            return wait
        try:
            shared = parse_rate(task.option("global_rate_limit"))
        except ValueError as exc:
            raise BadNumber(f"task {name!r}: global {exc}") from None
        if shared is None or not self.app.conf.result_backend:
            return wait
        # Every worker on this result backend shares the limit (Redis keeps it for all hosts).
        return min(float(self.app.backend.take_token(name, shared)), 3600.0)

    def _release_waiting(self, executor: ThreadPoolExecutor | None) -> None:
        """Start the rate-limited deliveries whose token is due."""
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            _, _, job = heapq.heappop(self.waiting)
            msg = job[1]
            try:
                wait = self._rate_wait(msg.task, self.app.tasks.get(msg.task))
            except Exception as exc:  # a global limit's store may be down
                log.warning("%s: rate limit of %s unreadable: %s", self.hostname, msg.task, exc)
                wait = 1.0
            if wait > 0:
                heapq.heappush(self.waiting, (now + wait, next(self._seq), job))
                return
            self._start_guarded(job, executor)

    def _start(self, job: _Job, executor: ThreadPoolExecutor | None) -> None:
        delivery, msg, late, _wait, limits = job
        self.active[id(delivery)] = _Active(self, msg, delivery)
        if self.send_events:
            self._emit("task-started", uuid=msg.id)
        task = self.app.tasks.get(msg.task)
        soft, hard = limits
        if self.prefork is not None:
            early = Outcome("ack", "acked early")
            self.prefork.submit(
                delivery,
                msg,
                lambda outcome: self._done.put((delivery, outcome if late else early)),
                self.revoked,
                soft,
                hard,
            )
        elif self.aio is not None and task is not None and task.is_async:
            early = Outcome("ack", "acked early")
            self.aio.submit(
                msg,
                delivery.queue,
                self.revoked,
                lambda outcome: self._done.put((delivery, outcome if late else early)),
                limits,
            )
        elif executor is None:
            self._run(job)
        else:
            future: Future[None] = executor.submit(self._run, job)
            future.add_done_callback(lambda f: f.exception())

    def _limits(self, msg: Any, task: Any) -> tuple[float | None, float | None]:
        """(soft, hard) seconds: set by remote control, else the message, else the task; each
        checked, so a bad one refuses this message and never reaches a timer."""
        soft = msg.headers.soft_time_limit
        hard = msg.headers.time_limit
        if msg.task in self.time_limits:  # set by remote control: wins over the message
            soft, hard = self.time_limits[msg.task]
        elif task is not None:
            soft = soft if soft is not None else task.option("soft_time_limit")
            hard = hard if hard is not None else task.option("time_limit")
        return check_seconds(soft, "soft_time_limit"), check_seconds(hard, "time_limit")

    def _run(self, job: _Job) -> None:
        delivery, msg, late, _wait, (soft, hard) = job
        early = Outcome("ack", "acked early")

        def hard_limit_passed() -> None:
            log.error(
                "%s: task %s[%s] passed its hard time limit; its thread is abandoned",
                self.hostname,
                msg.task,
                msg.id,
            )
            try:
                store_failure(
                    self.app, msg, TimeLimitExceeded(f"hard time limit ({hard}s) exceeded")
                )
            except Exception:  # the slot is freed all the same
                log.exception("%s: time limit failure of %s not stored", self.hostname, msg.id)
            self._done.put((delivery, Outcome("ack", "time-limit") if late else early))

        running = Running(msg.id, threading.get_ident(), hard_limit_passed)
        self.running[msg.id] = running
        try:
            if self.watchdog is not None and (soft or hard):
                self.watchdog.watch(running, soft, hard)
            outcome = execute(self.app, msg, delivery.queue, self.revoked, self.hostname)
        except Exception as exc:  # the backend or broker failed while settling the task
            log.exception("%s: task %s[%s] could not be settled", self.hostname, msg.task, msg.id)
            outcome = Outcome("requeue", f"worker-error: {safe_repr(exc)}")
        finally:
            keep = running.finish()
            self.running.pop(msg.id, None)
        if keep:
            self._done.put((delivery, outcome if late else early))

    def _settle(self, consumer: Consumer, block: bool, timeout: float = 0.0) -> int:
        """Ack, reject or requeue finished deliveries (acks batched); return how many.

        A broker error while settling is logged, not raised: the broker gives the delivery
        again (at least once), and the worker goes on.
        """
        acks: list[Delivery] = []
        settled = 0
        try:
            item = self._done.get(timeout=timeout) if block else self._done.get_nowait()
            while True:
                delivery, outcome = item
                settled += 1
                self.processed += 1
                info = self.active.pop(id(delivery), None)
                if info is not None:
                    self.totals[info["name"]] += 1
                    if self.send_events:
                        self._task_event(info, outcome)
                if outcome.reason == "acked early":
                    pass
                elif outcome.action == "ack":
                    acks.append(delivery)
                elif outcome.action == "reject":
                    log.error("%s: rejected %s: %s", self.hostname, delivery.queue, outcome.reason)
                    self._guarded("reject", consumer.reject, delivery, outcome.reason)
                else:
                    self._give_back(self._transport, consumer, delivery, outcome.reason)
                item = self._done.get_nowait()
        except queue_module.Empty:
            pass
        if acks:
            self._guarded("ack", consumer.ack, acks)
        return settled

    def _emit(self, type_: str, **fields: Any) -> None:
        if self.send_events:
            try:
                send_event(self.app, event(type_, self.hostname, **fields))
            except Exception as exc:  # an event lost is not a task lost
                log.warning("%s: %s event not sent: %s", self.hostname, type_, exc)

    def _task_event(self, info: Mapping[str, Any], outcome: Outcome) -> None:
        """The event that tells how a task ended (SPEC.md §9)."""
        uuid, runtime = info["id"], time.time() - info["time_start"]
        if outcome.action == "reject":
            self._emit("task-rejected", uuid=uuid, requeue=False)
        elif outcome.state == SUCCESS:
            self._emit(
                "task-succeeded", uuid=uuid, result=safe_repr(outcome.value, 1024), runtime=runtime
            )
        elif outcome.state == "RETRY":
            self._emit("task-retried", uuid=uuid, exception=outcome.reason, traceback="")
        elif outcome.state == "REVOKED":
            self._emit(
                "task-revoked",
                uuid=uuid,
                terminated=outcome.reason == "revoked",
                signum=None,
                expired=outcome.reason == "expired",
            )
        else:
            self._emit("task-failed", uuid=uuid, exception=outcome.reason, traceback="")

    def _guarded(self, what: str, call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except TransportError as exc:
            log.warning(
                "%s: %s failed (%s); the broker will deliver it again", self.hostname, what, exc
            )

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
    """A started task as ``inspect active`` shows it, built only when someone asks (most
    never are: building it for every task cost about 5% of a no-op drain)."""

    __slots__ = ("_delivery", "_full", "_msg", "_started", "_worker")

    def __init__(self, worker: Worker, msg: Any, delivery: Delivery) -> None:
        self._worker, self._msg, self._delivery = worker, msg, delivery
        self._started = time.time()
        self._full: dict[str, Any] | None = None

    def _info(self) -> dict[str, Any]:
        if self._full is None:
            full = self._worker.describe(self._msg, self._delivery)
            full["time_start"] = self._started
            self._full = full
        return self._full

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
