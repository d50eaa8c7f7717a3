"""The SQS transport: Kombu's queues and bodies, batches, held visibility (SPEC.md §6.4)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import sqs as envelope

from ..base import QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..errors import BrokerUnavailable, TransportError
from ..registry import redact_url
from . import attributes as attrs
from .broadcast import Broadcaster, SQSSubscription
from .clients import make_client
from .consumer import SQSConsumer
from .errors import CONNECTION_ERRORS, is_missing_queue
from .options import Settings, parse_settings
from .queues import QueueDirectory, SqsQueue
from .sts import AssumedRole

__all__ = ["SQSTransport"]

log = logging.getLogger("celeriac.transports.sqs")
T = TypeVar("T")
#: Entries per batch call (SQS's limit).
BATCH = 10


class SQSTransport(Transport):
    """``sqs://[access_key:secret@]host:port`` (ElasticMQ, LocalStack) or ``sqs://`` (AWS).

    The access key and secret come from the URL (URL-encoded) or, without them, from boto3's
    usual chain (environment, ``~/.aws``, instance role). Options (keyword or URL query):
    ``region`` (else the one in an AWS host name such as ``sqs.eu-west-1.amazonaws.com``,
    else AWS env/config, else us-east-1), ``is_secure`` (https; default on except
    for localhost), ``endpoint_url``, ``queue_name_prefix``, ``visibility_timeout`` (s, default
    60: how soon a dead consumer's deliveries come back; renewed while held),
    ``queue_visibility_timeout`` (default 1800, Kombu's, for queues we create),
    ``wait_time_seconds`` (long poll, default 20), ``max_receive_count`` (redrive policy,
    default 10; 0: none), ``message_group_id`` (FIFO default group), ``subscriber_lease``
    (s, default 60), ``connect_timeout`` (s, default 5), ``predefined_queues``, Kombu's
    ``sts_role_arn``, ``sts_token_timeout`` (s, default 900) and ``sts_token_buffer_time`` (s,
    default 60): the role is assumed at connect and again that long before its credentials
    expire.
    """

    schemes = ("sqs",)
    capabilities = Capabilities(
        priorities=False,
        priority_order=None,
        delayed_delivery=True,
        fanout=False,
        per_message_ack=True,
        redelivery="visibility-timeout",
        ordering="best-effort",
        shared=True,
        max_message_bytes=envelope.MAX_BODY_BYTES,
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.settings: Settings = parse_settings(url, options)
        self.client: Any = None
        self.quick_client: Any = None
        self._queues: QueueDirectory | None = None
        self._broadcaster: Broadcaster | None = None
        self._consumers: list[SQSConsumer] = []
        self._subscriptions: list[SQSSubscription] = []
        self._fifo_warned: set[str] = set()
        #: The assumed role whose credentials sign our calls (``sts_role_arn``), once connected.
        self.role: AssumedRole | None = None

    # -- connection -----------------------------------------------------------------------------
    def connect(self) -> None:
        if self.client is not None:
            return
        settings = self.settings
        if settings.sts_role_arn and self.role is None:
            try:
                self.role = AssumedRole(
                    settings.sts_role_arn,
                    settings.sts_token_timeout,
                    settings.sts_token_buffer_time,
                    settings.region,
                    settings.access_key,
                    settings.secret_key,
                )
            except (BotoCoreError, ClientError) as exc:
                raise BrokerUnavailable(
                    f"SQS: could not assume role {settings.sts_role_arn!r} through STS ({exc}); "
                    "do the credentials in use have sts:AssumeRole on it?"
                ) from None
        session = self.role.session if self.role is not None else None
        probe = make_client(settings, retries=1, session=session)
        predefined = self.settings.predefined_queues
        try:
            if predefined:  # no ListQueues right needed: look at one of the queues instead
                probe.get_queue_attributes(
                    QueueUrl=next(iter(predefined.values())), AttributeNames=["QueueArn"]
                )
            else:
                probe.list_queues(MaxResults=1)
        except (BotoCoreError, ClientError) as exc:
            raise self._unreachable(exc) from None
        finally:
            probe.close()
        self.client = make_client(settings, session=session)
        #: For calls answered at once (short receives): a hung read is given up quickly.
        self.quick_client = make_client(settings, retries=2, long_polls=False, session=session)
        self._queues = QueueDirectory(self.client, self.settings)
        self._broadcaster = Broadcaster(self)

    def _unreachable(self, exc: Exception) -> BrokerUnavailable:
        where = f"SQS at {self.settings.address} ({redact_url(self.url)!r})"
        if isinstance(exc, ClientError):
            return BrokerUnavailable(
                f"{where} refused us ({exc}); check the access key and secret (user:password "
                f"in the URL, or the AWS environment) and the region ({self.settings.region!r})"
            )
        return BrokerUnavailable(
            f"{where} is unreachable ({exc}); is the server (ElasticMQ, LocalStack) running, "
            "and are the host and port right (http for localhost, https elsewhere unless "
            "is_secure says otherwise)?"
        )

    @property
    def queues(self) -> QueueDirectory:
        """The queue directory, connecting on first use."""
        if self._queues is None:
            self.connect()
        assert self._queues is not None
        return self._queues

    def unavailable(self, what: str, exc: Exception) -> BrokerUnavailable:
        """The error for an operation the endpoint did not answer, naming it and the host."""
        return BrokerUnavailable(
            f"SQS at {self.settings.address}: could not {what} ({exc}); is the server up and "
            "reachable? The next call tries again."
        )

    def call(self, what: str, queue: str, fn: Callable[[SqsQueue], T]) -> T:
        """Run ``fn`` on ``queue``'s SQS queue, creating the queue again if the server lost it,
        and turn botocore's errors into ours."""
        try:
            try:
                return fn(self.queues.get(queue))
            except ClientError as exc:
                if not is_missing_queue(exc):
                    raise
                # Deleted, or an in-memory server restarted: declare it again and retry once.
                log.warning("SQS queue for %r is gone; creating it again", queue)
                self.queues.forget()
                return fn(self.queues.get(queue))
        except CONNECTION_ERRORS as exc:
            raise self.unavailable(what, exc) from exc
        except (BotoCoreError, ClientError) as exc:
            raise TransportError(
                f"SQS at {self.settings.address}: could not {what}: {exc}"
            ) from exc
        except ProtocolError as exc:  # a queue name SQS cannot take
            raise TransportError(f"could not {what}: {exc}") from None

    def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()
        for consumer in list(self._consumers):
            consumer.close()
        self._subscriptions.clear()
        self._consumers.clear()
        if self.client is not None:
            self.client.close()
            self.quick_client.close()
            self.client = self.quick_client = None
            self._queues = None
        if self.role is not None:
            self.role.close()
            self.role = None

    # -- queues ---------------------------------------------------------------------------------
    def declare_queue(self, spec: QueueSpec) -> None:
        """Create the queue (Kombu's attributes) and its dead-letter queue, with a redrive
        policy that moves messages received ``max_receive_count`` times to it."""
        try:
            self.queues.declare(spec)
        except ProtocolError as exc:
            raise TransportError(f"cannot declare SQS queue {spec.name!r}: {exc}") from None
        except CONNECTION_ERRORS as exc:
            raise self.unavailable(f"declare queue {spec.name!r}", exc) from exc
        except (BotoCoreError, ClientError) as exc:
            raise TransportError(
                f"SQS at {self.settings.address}: could not declare {spec.name!r}: {exc}"
            ) from exc

    def purge(self, queue: str) -> int:
        """Receive and delete until the queue is empty (exact, unlike PurgeQueue, which AWS
        allows once a minute and which also drops in-flight and delayed messages)."""

        def run(q: SqsQueue) -> int:
            count = empty = 0
            while True:
                got = self.client.receive_message(
                    QueueUrl=q.url,
                    MaxNumberOfMessages=BATCH,
                    WaitTimeSeconds=min(empty, 1),
                    VisibilityTimeout=30,
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not got:
                    # AWS's short polls sample some servers only: confirm with the count, and
                    # by a few long polls if the count (also approximate there) disagrees.
                    if empty >= 3 or self._ready(q) == 0:
                        return count
                    empty += 1
                    continue
                empty = 0
                ready = [m for m in got if not self.send_on_if_early(q, m)]
                if ready:
                    entries = [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(ready)
                    ]
                    self.client.delete_message_batch(QueueUrl=q.url, Entries=entries)
                count += len(ready)

        return self.call(f"purge {queue!r}", queue, run)

    def send_on_if_early(self, q: SqsQueue, message: dict[str, Any]) -> bool:
        """Send a received message on to its next delay hop if it is not due yet (SPEC.md
        §6.4: delays past 900 s) and delete the copy received; False when it is due."""
        due = attrs.deliver_at(message.get("MessageAttributes") or {})
        hop = 0 if due is None else envelope.delay_hop(due - time.time())
        if hop <= 0:
            return False
        self.client.send_message(
            QueueUrl=q.url,
            MessageBody=message["Body"],
            DelaySeconds=hop,
            MessageAttributes=attrs.copy_attributes(message.get("MessageAttributes") or {}),
        )
        self.client.delete_message(QueueUrl=q.url, ReceiptHandle=message["ReceiptHandle"])
        return True

    def _ready(self, q: SqsQueue) -> int:
        got = self.client.get_queue_attributes(
            QueueUrl=q.url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(got["Attributes"]["ApproximateNumberOfMessages"])

    def queue_length(self, queue: str) -> int:
        return self.call(f"read the length of {queue!r}", queue, self._ready)

    # -- publishing -----------------------------------------------------------------------------
    def entry(
        self,
        q: SqsQueue,
        message: WireMessage,
        *,
        delay: float | None = None,
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The SendMessage parameters (without the queue URL) of ``message``."""
        try:
            body = envelope.pack_wire(message, q.name)
        except ProtocolError as exc:
            raise TransportError(f"cannot publish to {q.name!r}: {exc}") from None
        attributes = {envelope.SEQUENCE_ATTRIBUTE: attrs.next_sequence(), **(extra or {})}
        params: dict[str, Any] = {"MessageBody": body}
        if delay is not None and delay > 0:
            if q.fifo:
                raise TransportError(
                    f"SQS FIFO queue {q.sqs_name!r} takes no per-message delay; publish "
                    "without delay (the worker honours the task's eta) or use a standard queue"
                )
            hop = envelope.delay_hop(delay)
            if delay > envelope.MAX_DELAY_SECONDS:
                # Longer than SQS holds a message: consumers send it on until it is due.
                attributes[envelope.DELIVER_AT_ATTRIBUTE] = attrs.number(time.time() + delay)
            params["DelaySeconds"] = hop
        if q.fifo:
            params["MessageGroupId"] = envelope.group_id(
                message, q.sqs_name, self.settings.message_group_id
            )
            params["MessageDeduplicationId"] = envelope.deduplication_id(message)
        elif q.sqs_name not in self._fifo_warned and any(
            k in message.properties for k in ("MessageGroupId", "MessageDeduplicationId")
        ):
            # SQS refuses both on a standard queue (InvalidParameterValue): left out, once said.
            self._fifo_warned.add(q.sqs_name)
            log.warning(
                "SQS queue %r is a standard queue: MessageGroupId and MessageDeduplicationId "
                "apply to FIFO queues (names ending .fifo) only and are not sent",
                q.sqs_name,
            )
        try:
            envelope.check_size(body, attrs.attributes_size(attributes), q.max_bytes)
        except ProtocolError as exc:
            raise TransportError(f"cannot publish to SQS queue {q.sqs_name!r}: {exc}") from None
        params["MessageAttributes"] = attributes
        return params

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        self.send(queue, message, delay=delay)

    def send(
        self,
        queue: str,
        message: WireMessage,
        *,
        delay: float | None = None,
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Publish with extra message attributes (the dead-letter reason)."""

        def run(q: SqsQueue) -> None:
            self.client.send_message(
                QueueUrl=q.url, **self.entry(q, message, delay=delay, extra=extra)
            )

        self.call(f"publish to {queue!r}", queue, run)

    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        """SendMessageBatch, up to 10 messages and the queue's size limit per call."""

        def run(q: SqsQueue) -> None:
            entries = [self.entry(q, m) for m in messages]
            for batch in _batches(entries, q.max_bytes):
                numbered = [{"Id": str(i), **e} for i, e in enumerate(batch)]
                result = self.client.send_message_batch(QueueUrl=q.url, Entries=numbered)
                failed = result.get("Failed") or []
                if failed:
                    first = failed[0]
                    raise TransportError(
                        f"SQS at {self.settings.address} refused {len(failed)} of a batch of "
                        f"{len(batch)} for {q.sqs_name!r}: {first.get('Code')}: "
                        f"{first.get('Message')}"
                    )

        self.call(f"publish to {queue!r}", queue, run)

    # -- consuming ------------------------------------------------------------------------------
    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> SQSConsumer:
        consumer = SQSConsumer(self, queues, prefetch)
        self._consumers.append(consumer)
        return consumer

    def forget_consumer(self, consumer: SQSConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    # -- broadcast ------------------------------------------------------------------------------
    def broadcast(self, exchange: str, message: WireMessage) -> None:
        """Send to every live subscriber queue of ``exchange`` (SPEC.md §6.4)."""
        if self.settings.predefined_queues:
            _no_broadcasts(exchange)
            return
        if self._broadcaster is None:
            self.connect()
        assert self._broadcaster is not None
        self._broadcaster.broadcast(exchange, message)

    def subscribe(self, exchange: str) -> Subscription:
        if self.settings.predefined_queues:
            _no_broadcasts(exchange)
            return _Silent()
        if self._broadcaster is None:
            self.connect()
        assert self._broadcaster is not None
        subscription = self._broadcaster.subscribe(exchange)
        self._subscriptions.append(subscription)
        return subscription


_warned: set[str] = set()


def _no_broadcasts(exchange: str) -> None:
    """Broadcasts need a queue per subscriber, made on the fly: not with predefined queues."""
    if exchange not in _warned:
        _warned.add(exchange)
        log.warning(
            "SQS with predefined_queues: broadcasts on %r (remote control, events) are off; "
            "they need the CreateQueue and ListQueues rights that predefined queues do without",
            exchange,
        )


class _Silent(Subscription):
    """A subscription that never receives (broadcasts are off with predefined queues)."""

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        threading.Event().wait(timeout or 0.0)  # nothing will come: wait as asked
        return None

    def close(self) -> None:
        return None


def _batches(entries: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Split into batches of at most 10 entries whose sizes add up to at most ``max_bytes``
    (SQS's limit on a whole batch is the same as on one message)."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for e in entries:
        n = len(e["MessageBody"]) + attrs.attributes_size(e["MessageAttributes"])
        if current and (len(current) == BATCH or size + n > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(e)
        size += n
    if current:
        out.append(current)
    return out
