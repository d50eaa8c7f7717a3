"""The worker's own checks on each delivery, in the order ``Worker.admission`` runs them (each
returns False when it settled the message itself), and what they share with the loop: the
dead letter, the counted requeue, the time and rate limits a message is held to."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celeriac.protocol import ProtocolError, decode_task
from celeriac.protocol.limits import Limits
from celeriac.protocol.signing import verify
from celeriac.protocol.wire import BROKER_DELAYED_HEADER, mark_broker_delayed
from celeriac.transports import Consumer, Delivery, Transport, TransportError

from .. import signals
from ..events import event, send_event
from ..exceptions import WorkerLostError
from .boundary import (
    DELIVERY_COUNT_HEADER,
    MAX_DELAY,
    BadNumber,
    check_seconds,
    deliveries,
    safe_repr,
)
from .execute import store_failure
from .job import Job
from .limits import TokenBucket, parse_rate
from .policy import Admission, Step
from .revoked import RevokedSet

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Checks", "expired"]

log = logging.getLogger("celeriac.worker")
# A message due this close to now runs at once rather than going back for the wait.
_ETA_SLACK = 0.05


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


def expired(msg: Any) -> bool:
    """The message's expiry has passed (the pool will not run it)."""
    expires = msg.headers.expires
    if expires is None:
        return False
    try:
        aware = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        return bool(aware <= datetime.now(UTC))
    except (OverflowError, TypeError, ValueError):  # a date at the edge of the calendar
        return False


class Checks:
    """The :class:`~celeriac.worker.core.Worker`'s checks and settling helpers, kept apart from
    its loop; they run on the worker (``self`` is the worker)."""

    # The worker's state the checks read (set by Worker.__init__).
    app: App
    hostname: str
    accept: frozenset[str]
    limits: Limits
    signing_keys: dict[str, str] | None
    max_deliveries: int
    send_events: bool
    revoked: RevokedSet
    time_limits: dict[str, tuple[float | None, float | None]]
    buckets: dict[str, TokenBucket | None]
    _shared_rates: dict[str, float | None]
    _task_options: dict[str, tuple[bool, Any, Any]]
    steps: list[Step]

    def _emit(self, type_: str, **fields: Any) -> None:
        # Worker events go out with or without -E, as Celery's (its heartbeat is on by default):
        # monitors see the worker; -E adds the task events.
        if self.send_events or type_.startswith("worker-"):
            try:
                send_event(self.app, event(type_, self.hostname, **fields))
            except Exception as exc:  # an event lost is not a task lost
                log.warning("%s: %s event not sent: %s", self.hostname, type_, exc)

    def _guarded(self, what: str, call: Callable[..., Any], *args: Any) -> None:
        """Settle through the transport; a failure leaves the delivery to come back."""
        try:
            call(*args)
        except TransportError as exc:
            log.warning(
                "%s: %s failed (%s); the broker will deliver it again", self.hostname, what, exc
            )
        except Exception:  # a transport's own bug must not stop the loop either
            log.exception("%s: %s failed; the broker will deliver it again", self.hostname, what)

    @property
    def _plain(self) -> bool:
        """No setting or listener makes every message go through each check: no signatures,
        no task events, no task_received receiver, no users' steps."""
        return (
            self.signing_keys is None
            and not self.send_events
            and not self.steps
            and not signals.task_received
        )

    def _plain_job(self, a: Admission) -> Job | None:
        """The job of a decoded message that none of the remaining checks can act on, else
        None (the checks run). Plain: a first delivery of a known task, no ETA, no time limit
        (message, task or remote control) and a task known to have no rate limit. Each
        condition is what makes the matching check a no-op: poison and the recount need a
        redelivery or a count, ``_limits_read`` a limit, ``_due`` an ETA, ``_rated`` a limit
        (read by the full path on the task's first message)."""
        msg, task, delivery = a.message, a.task, a.delivery
        assert msg is not None and delivery.message is not None
        h = msg.headers
        if (
            task is None
            or h.eta is not None
            or h.time_limit is not None
            or h.soft_time_limit is not None
            or delivery.redelivered
            or (delivery.deliveries or 1) > self.max_deliveries
            or DELIVERY_COUNT_HEADER in delivery.message.headers
        ):
            return None
        name = h.task
        late, soft, hard = self._options(name, task)
        if (
            soft is not None
            or hard is not None
            or name in self.time_limits
            or self.buckets.get(name, False) is not None
            or self._shared_rates.get(name, False) is not None
        ):
            return None
        return Job(delivery, msg, task, late, None, None, self.hostname)

    def _decoded(self, a: Admission) -> bool:
        """The envelope, signature and body can be read, within the limits."""
        delivery = a.delivery
        if delivery.message is None:
            log.error(
                "%s: unreadable envelope on %s: %s", self.hostname, delivery.queue, delivery.error
            )
            self._dead_letter(a.consumer, delivery, f"malformed-envelope: {delivery.error}")
            return False
        try:
            if self.signing_keys is not None:
                verify(delivery.message, self.signing_keys)
            a.message = decode_task(delivery.message, accept=self.accept, limits=self.limits)
        except ProtocolError as exc:
            log.error("%s: rejected a message on %s: %s", self.hostname, delivery.queue, exc)
            signals.task_rejected.send(self, message=delivery.message, exc=exc)
            self._dead_letter(a.consumer, delivery, _reason(exc))
            return False
        a.task = self.app.tasks.get(a.message.task)
        return True

    def _not_poison(self, a: Admission) -> bool:
        """Delivered no more than worker_max_deliveries times."""
        count = deliveries(a.delivery, flagged_only=not a.transport.counts_redeliveries)
        if count <= self.max_deliveries:
            return True
        # Given back more often than allowed (each worker that took it died, or its task kept
        # asking to be requeued): run again, it would loop forever.
        why = f"delivered {count} times (worker_max_deliveries={self.max_deliveries})"
        self._refuse(a, f"poison: {why}", WorkerLostError(why))
        return False

    def _recounted(self, a: Admission) -> bool:
        """A redelivery the broker only flags (a classic RabbitMQ queue, a Kafka offset) is
        counted here: a copy carrying the count goes to the back of the queue (confirmed by
        the broker), then the original is acked, so a message that kills every worker that
        runs it still reaches worker_max_deliveries. Only redeliveries pay this hop."""
        delivery, message = a.delivery, a.delivery.message
        if not delivery.redelivered or a.transport.counts_redeliveries or message is None:
            return True
        if delivery.deliveries is not None:  # counted by the broker after all
            return True
        # The copy is this same delivery, moved: it counts as delivered before what it says.
        before = deliveries(delivery, flagged_only=True) - 1
        headers = {**message.headers, DELIVERY_COUNT_HEADER: before}
        try:
            a.transport.publish(delivery.queue, dataclasses.replace(message, headers=headers))
        except Exception as exc:  # run it uncounted rather than risk losing it
            log.warning("%s: could not count a redelivery: %s", self.hostname, safe_repr(exc))
            return True
        self._guarded("ack", a.consumer.ack, [delivery])
        return False

    def _announced(self, a: Admission) -> bool:
        """The task-received event."""
        msg = a.message
        if (
            self.send_events
            and msg is not None
            and msg.id not in self.revoked
            and msg.task in self.app.tasks
            and not expired(msg)  # Celery revokes it on receipt: only task-revoked is sent
        ):
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
        return True

    def _limits_read(self, a: Admission) -> bool:
        """Its time limits are in range (remote control's, else the message's, else the task's)."""
        try:
            a.soft_limit, a.hard_limit = self._limits(a.message, a.task)
        except BadNumber as exc:
            self._refuse(a, f"limit-out-of-range: {exc}", exc)
            return False
        return True

    def _due(self, a: Admission) -> bool:
        """Its ETA has come; else it goes back to the broker to wait (parked)."""
        msg, delivery = a.message, a.delivery
        assert msg is not None and delivery.message is not None
        try:
            eta = self._eta_wait(msg)
        except BadNumber as exc:
            self._refuse(a, f"limit-out-of-range: {exc}", exc)
            return False
        if eta is None or eta <= _ETA_SLACK:
            return True
        # A message the broker held until its time is due by the broker's clock, whatever ours
        # says (skewed, or jumped back): running it beats holding it for the difference.
        held = bool(delivery.message.headers.get(BROKER_DELAYED_HEADER))
        if held and self.signing_keys is None:  # the marker is not signed
            return True
        # Not due yet (a client that does not delay natively): the broker holds it.
        a.transport.publish(delivery.queue, mark_broker_delayed(delivery.message), delay=eta)
        a.consumer.ack([delivery])
        return False

    def _rated(self, a: Admission) -> bool:
        """Its rate limit says when it may start (it waits in the worker until then)."""
        assert a.message is not None
        try:
            a.wait = self._rate_wait(a.message.task, a.task)
        except BadNumber as exc:
            self._refuse(a, f"limit-out-of-range: {exc}", exc)
            return False
        return True

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

    def _refuse(self, a: Admission, reason: str, exc: BaseException) -> None:
        """Dead-letter a decoded message the worker will not run, and store it as FAILURE so
        its caller learns why (one attempt: the loop must not wait on a backend outage)."""
        assert a.message is not None
        self._refuse_message(a.consumer, a.delivery, a.message, reason, exc)

    def _refuse_message(
        self,
        consumer: Consumer,
        delivery: Delivery,
        msg: Any,
        reason: str,
        exc: BaseException,
    ) -> None:
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
        count = deliveries(delivery, flagged_only=not transport.counts_redeliveries)
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
                self._refuse_message(
                    consumer, delivery, msg, f"poison: {why}", WorkerLostError(why)
                )
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
        if task is None:
            return 0.0  # unknown: no limit to read, and no entry per name a client invents
        if name not in self.buckets:
            try:
                rate = parse_rate(task.option("rate_limit"))
            except ValueError as exc:
                raise BadNumber(f"task {name!r}: {exc}") from None
            self.buckets[name] = None if rate is None else TokenBucket(rate)
        bucket = self.buckets[name]
        wait = 0.0 if bucket is None else bucket.take()
        if wait > 0:
            return wait
        if name in self._shared_rates:
            shared = self._shared_rates[name]
        else:
            try:
                shared = parse_rate(task.option("global_rate_limit"))
            except ValueError as exc:
                raise BadNumber(f"task {name!r}: global {exc}") from None
            self._shared_rates[name] = shared
        if shared is None or not self.app.conf.result_backend:
            return wait
        # Every worker on this result backend shares the limit (Redis keeps it for all hosts).
        return min(float(self.app.backend.take_token(name, shared)), 3600.0)

    def _limits(self, msg: Any, task: Any) -> tuple[float | None, float | None]:
        """(soft, hard) seconds: set by remote control, else the message, else the task; each
        checked, so a bad one refuses this message and never reaches a timer."""
        soft = msg.headers.soft_time_limit
        hard = msg.headers.time_limit
        if msg.task in self.time_limits:  # set by remote control: wins over the message
            soft, hard = self.time_limits[msg.task]
        elif task is not None:
            _, task_soft, task_hard = self._options(msg.task, task)
            soft = soft if soft is not None else task_soft
            hard = hard if hard is not None else task_hard
        return check_seconds(soft, "soft_time_limit"), check_seconds(hard, "time_limit")

    def _options(self, name: str, task: Any) -> tuple[bool, Any, Any]:
        """``task``'s acks_late, soft_time_limit and time_limit, read on its first message."""
        found = self._task_options.get(name)
        if found is None:
            found = (
                bool(task.option("acks_late", True)),
                task.option("soft_time_limit"),
                task.option("time_limit"),
            )
            self._task_options[name] = found
        return found
