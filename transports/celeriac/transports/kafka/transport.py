"""The Kafka transport: a topic per queue, a consumer group per queue (SPEC.md §6.5)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import kafka
import kafka.errors as kerrors
from kafka.admin import OffsetSpec
from kafka.structs import TopicPartition

from celeriac.protocol import WireMessage
from celeriac.protocol.envelopes import kafka as kafka_envelope
from celeriac.protocol.envelopes.kafka import DELIVER_AT_HEADER, KafkaRecord

from ..base import QueueSpec, Subscription, Transport
from ..capabilities import Capabilities
from ..errors import BrokerUnavailable, TransportError
from ..registry import redact_url
from .consumer import KafkaQueueConsumer
from .diagnosis import capture_connect_log
from .options import parse_options, security_config
from .subscription import KafkaSubscription
from .topics import broadcast_topic, check_queue_name, delay_topic, group_id

__all__ = ["KafkaTransport", "MessageTooLarge"]

log = logging.getLogger("celeriac.transports.kafka")
# How long publish waits for the broker to confirm a record (it retries inside that time).
_PUBLISH_TIMEOUT_S = 30.0


class MessageTooLarge(TransportError):
    """A record larger than the broker takes (message.max.bytes)."""


#: kafka-python's errors for "the broker cannot be reached now" (NoBrokersAvailable is gone
#: from 3.0; naming it in an except clause raised AttributeError while handling the real error).
_UNAVAILABLE: tuple[type[BaseException], ...] = tuple(
    getattr(kerrors, name)
    for name in (
        "KafkaTimeoutError",
        "NoBrokersAvailable",
        "KafkaConnectionError",
        "NodeNotReadyError",
        "BrokerNotAvailableError",
    )
    if hasattr(kerrors, name)
)


class KafkaTransport(Transport):
    """``kafka://host:port[,host:port]`` through kafka-python.

    Options (keyword or URL query): ``partitions`` (per queue topic, default 4),
    ``replication_factor`` (1), ``session_timeout_ms`` (10000: how soon a dead consumer's
    records go to another), ``heartbeat_interval_ms`` (1000), ``max_poll_interval_ms``,
    ``request_timeout_ms``, ``fetch_max_wait_ms`` (100), ``max_message_bytes`` (1 MiB, the
    broker's message.max.bytes), ``delay_buffer`` (10000 delayed records kept in memory per
    queue), ``connect_timeout`` (10 s), ``client_id``, ``check_crcs`` (True; install the
    ``crc32c`` package, or kafka-python checks them in pure Python, which bounds consuming).
    A consumer fetches at most 2 KiB per record of its prefetch from each partition per request
    (64 KiB to 1 MiB; a larger record still comes whole).

    Acks are emulated on offsets: a consumer commits, per partition, up to its lowest unsettled
    record, so a crash redelivers every unsettled record and possibly settled ones above it.
    """

    schemes = ("kafka",)
    capabilities = Capabilities(
        priorities=False,
        priority_order=None,
        delayed_delivery=True,
        fanout=True,
        # The broker records a committed offset, not acks: settled records above an unsettled
        # one come back after a crash (the consumer emulates per-message acks while it lives).
        per_message_ack=False,
        redelivery="offset",
        ordering="per-partition",
        shared=True,
        max_message_bytes=1_048_576,
    )
    # A crash redelivers from the committed offset: the records come back flagged, not counted.
    counts_redeliveries = False

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.settings, self.servers = parse_options(url, options)
        self.address = ",".join(self.servers)
        self._producer: kafka.KafkaProducer | None = None
        self._admin: kafka.KafkaAdminClient | None = None
        self._partitions: dict[str, list[int]] = {}
        #: Topics this transport created (or found existing when it tried to).
        self._created: set[str] = set()
        self._rotation = itertools.count()

    # -- connection -----------------------------------------------------------------------------
    def client_config(self) -> dict[str, Any]:
        """Settings every kafka-python client of this transport shares."""
        s = self.settings
        return {
            "bootstrap_servers": self.servers,
            "client_id": s.client_id,
            "request_timeout_ms": s.request_timeout_ms,
            "bootstrap_timeout_ms": int(s.connect_timeout * 1000),
            "reconnect_backoff_max_ms": 2000,
            **security_config(self.url, s),
        }

    def connect(self) -> None:
        if self._producer is not None:
            return
        self._check_reachable()
        config = self.client_config()
        try:
            with capture_connect_log() as log:
                self._connect_clients()
        except kerrors.KafkaError as exc:
            self.close()
            cause = log.cause(config["security_protocol"], config.get("sasl_mechanism", ""))
            if cause:
                raise BrokerUnavailable(
                    f"Kafka at {self.address} refused {redact_url(self.url)!r}: {cause}"
                ) from None
            raise self.unavailable("connect", exc) from None

    def _connect_clients(self) -> None:
        self._admin = kafka.KafkaAdminClient(**self.client_config())
        self._producer = kafka.KafkaProducer(
            **self.client_config(),
            acks="all",
            linger_ms=0,
            batch_size=256 * 1024,
            max_request_size=self.settings.max_message_bytes + 64 * 1024,
            max_block_ms=int(_PUBLISH_TIMEOUT_S * 1000),
            enable_idempotence=self.settings.enable_idempotence,
        )

    def _check_reachable(self) -> None:
        """A plain TCP connect first, so a wrong address fails at once and clearly."""
        errors = []
        for server in self.servers:
            host, _, port = server.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=5.0):
                    return
            except (OSError, ValueError) as exc:
                errors.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
        raise BrokerUnavailable(
            f"Kafka at {self.address} is unreachable ({'; '.join(errors)}); is the broker "
            f"running, and are the host and port of {redact_url(self.url)!r} right? (They must "
            "be the broker's advertised listener.)"
        )

    def unavailable(self, what: str, exc: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"Kafka at {self.address}: could not {what} ({type(exc).__name__}: {exc}); is the "
            "broker up and reachable at its advertised listener, and does the topic exist "
            "(declare the queue first where the broker does not create topics itself)?"
        )

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn kafka-python's errors into ours, naming the operation and the brokers."""
        try:
            yield
        except kerrors.MessageSizeTooLargeError as exc:
            raise self.too_large(what, None, exc) from None
        except _UNAVAILABLE as exc:
            raise self.unavailable(what, exc) from exc
        except kerrors.KafkaError as exc:
            raise TransportError(f"Kafka at {self.address}: could not {what}: {exc}") from exc

    def too_large(self, what: str, size: int | None, exc: BaseException | None) -> MessageTooLarge:
        limit = self.settings.max_message_bytes
        found = f"a record of about {size} bytes" if size is not None else f"the record ({exc})"
        return MessageTooLarge(
            f"Kafka at {self.address}: could not {what}: {found} is over the limit of {limit} "
            "bytes (the broker's message.max.bytes); compress the body (compression='zlib'), or "
            "store the data elsewhere and pass a reference to it"
        )

    def producer(self) -> kafka.KafkaProducer:
        if self._producer is None:
            self.connect()
        assert self._producer is not None
        return self._producer

    def admin(self) -> kafka.KafkaAdminClient:
        if self._admin is None:
            self.connect()
        assert self._admin is not None
        return self._admin

    def close(self) -> None:
        producer, admin = self._producer, self._admin
        self._producer = self._admin = None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=5)
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()

    # -- topics ---------------------------------------------------------------------------------
    def create_topics(self, topics: dict[str, int]) -> None:
        """Create topics (name -> partitions) that do not exist yet."""
        spec = {
            name: {"num_partitions": n, "replication_factor": self.settings.replication_factor}
            for name, n in topics.items()
        }
        with self.errors(f"create topics {', '.join(topics)}"):
            reply = self.admin().create_topics(spec, raise_errors=False, wait_for_metadata=True)
        for topic in reply.get("topics", []):
            code = topic.get("error_code", 0)
            if code not in (0, kerrors.TopicAlreadyExistsError.errno):
                raise TransportError(
                    f"Kafka at {self.address}: could not create topic {topic.get('name')!r}: "
                    f"{topic.get('error_message') or kerrors.for_code(code).__name__}"
                )
            self._created.add(str(topic.get("name")))

    def exists(self, topic: str) -> bool:
        """Whether ``topic`` exists: created here, or listed by the broker asked (on a cluster
        that broker may not list a topic another broker created a moment ago)."""
        return topic in self._created or bool(self.partitions(topic))

    def partitions(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` ([] when it does not exist)."""
        known = self._partitions.get(topic)
        if known:
            return known
        with self.errors(f"describe topic {topic!r}"):
            (described,) = self.admin().describe_topics([topic])
        found = sorted(p["partition_index"] for p in described.get("partitions") or ())
        if found:
            self._partitions[topic] = found
        return found

    def declare_queue(self, spec: QueueSpec) -> None:
        """Create the queue's topic, its dead-letter topic and its delay topic."""
        check_queue_name(spec.name)
        n = self.settings.partitions
        self.create_topics({spec.name: n, spec.dead_letter_queue: n, delay_topic(spec.name): n})

    # -- publishing -----------------------------------------------------------------------------
    def record(self, queue: str, message: WireMessage, *, exchange: str = "") -> KafkaRecord:
        """The record for ``message``, refused here when the broker would refuse it."""
        record = kafka_envelope.pack_wire(message, queue, exchange=exchange)
        size = kafka_envelope.record_size(record)
        if size > self.settings.max_message_bytes:
            raise self.too_large(f"publish to {queue!r}", size, None)
        return record

    def send(
        self, topics_records: Sequence[tuple[str, KafkaRecord]], partition: int | None = None
    ) -> None:
        """Produce records and wait until the broker has every one of them."""
        producer = self.producer()
        futures = [
            producer.send(
                topic,
                value=r.value,
                key=r.key,
                headers=list(r.headers),
                partition=partition,
            )
            for topic, r in topics_records
        ]
        producer.flush(timeout=_PUBLISH_TIMEOUT_S)
        for future in futures:
            future.get(timeout=_PUBLISH_TIMEOUT_S)  # raises the broker's error, if any

    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        record = self.record(queue, message)
        topic = queue
        if delay is not None and delay > 0:
            due = int((time.time() + delay) * 1000)
            record = kafka_envelope.with_headers(record, {DELIVER_AT_HEADER: str(due).encode()})
            topic = delay_topic(queue)
        with self.errors(f"publish to {topic!r}"):
            self.send([(topic, record)])

    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        """One flush for the lot; a batch goes to one partition (round robin between batches),
        so it keeps its order and travels in as few produce requests as possible."""
        if not messages:
            return
        records = [(queue, self.record(queue, m)) for m in messages]
        partitions = self.partitions(queue)
        partition = partitions[next(self._rotation) % len(partitions)] if partitions else None
        with self.errors(f"publish to {queue!r}"):
            self.send(records, partition)

    # -- queues ---------------------------------------------------------------------------------
    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> KafkaQueueConsumer:
        self.connect()
        return KafkaQueueConsumer(self, queues, prefetch)

    def _ready(self, queue: str) -> tuple[int, dict[TopicPartition, int]]:
        """Ready records of ``queue`` and each partition's end offset.

        Ready: past the group's committed offset and past what a member has handed out (the
        commit's metadata, SPEC.md §6.5), and not deleted by a purge."""
        tps = [TopicPartition(queue, p) for p in self.partitions(queue)]
        if not tps:
            return 0, {}
        admin = self.admin()
        with self.errors(f"count queue {queue!r}"):
            ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
            starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
            group = admin.list_group_offsets({group_id(queue): tps}).get(group_id(queue), {})
        total = 0
        end_offsets = {}
        for tp in tps:
            end = ends[tp].offset
            end_offsets[tp] = end
            floor = starts[tp].offset
            committed = group.get(tp)
            if committed is not None and committed.offset >= 0:
                floor = max(floor, committed.offset, _handed(committed.metadata))
            total += max(end - floor, 0)
        return total, end_offsets

    def queue_length(self, queue: str) -> int:
        return self._ready(queue)[0]

    def purge(self, queue: str) -> int:
        """Delete every record up to the end of each partition; returns how many were ready.

        Records a live consumer holds are deleted from the log too: if it dies before settling
        them, they do not come back."""
        ready, ends = self._ready(queue)
        if ends:
            with self.errors(f"purge queue {queue!r}"):
                self.admin().delete_records(ends)
        return ready

    # -- broadcast ------------------------------------------------------------------------------
    def broadcast_partitions(self, exchange: str) -> list[TopicPartition]:
        topic = broadcast_topic(exchange)
        if not self.partitions(topic):
            self.create_topics({topic: 1})
        # On a cluster, the broker asked may list a topic another broker just created a moment
        # later: wait (bounded) rather than subscribe to no partition at all.
        deadline = time.monotonic() + self.settings.connect_timeout
        found = self.partitions(topic)
        while not found and time.monotonic() < deadline:
            time.sleep(0.1)
            found = self.partitions(topic)
        if not found:
            raise TransportError(
                f"Kafka at {self.address}: topic {topic!r} was created, but no broker listed its "
                f"partitions within connect_timeout ({self.settings.connect_timeout} s)"
            )
        return [TopicPartition(topic, p) for p in found]

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        topic = broadcast_topic(exchange)
        self.broadcast_partitions(exchange)
        record = self.record(topic, message, exchange=exchange)
        with self.errors(f"broadcast to {exchange!r}"):
            self.send([(topic, record)])

    def subscribe(self, exchange: str) -> Subscription:
        return KafkaSubscription(self, exchange)


def _handed(metadata: str | None) -> int:
    """The handed-out position a consumer wrote in its commit's metadata (0 when absent)."""
    try:
        return int(metadata or 0)
    except ValueError:
        return 0
