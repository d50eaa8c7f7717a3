"""Broadcast subscriptions: every subscriber reads the exchange's topic from its end, alone."""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import kafka
import kafka.errors as kerrors
from kafka.structs import TopicPartition

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import kafka as kafka_envelope

from ..base import Subscription
from ..errors import TransportError

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["KafkaSubscription"]

log = logging.getLogger("celeriac.transports.kafka")
#: Pause between look-ups of a topic the cluster's metadata does not list yet.
_METADATA_RETRY_S = 0.1


class KafkaSubscription(Subscription):
    """Partitions assigned by hand (no group, nothing committed), positioned at their end
    before ``subscribe`` returns: every record broadcast afterwards reaches this subscriber."""

    def __init__(self, transport: KafkaTransport, exchange: str) -> None:
        self.transport = transport
        self.exchange = exchange
        self.buffer: collections.deque[WireMessage] = collections.deque()
        partitions = transport.broadcast_partitions(exchange)
        with transport.errors(f"subscribe to {exchange!r}"):
            self.reader = kafka.KafkaConsumer(
                **transport.client_config(),
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=transport.settings.fetch_max_wait_ms,
            )
        try:
            self.reader.assign(partitions)
            self._position_at_end(partitions)
        except BaseException:
            self.close()
            raise

    def _position_at_end(self, partitions: list[TopicPartition]) -> None:
        """Resolve each partition's end offset now, not at the first poll.

        On a cluster the broker this reader asks for metadata may not know a topic another
        broker created a moment ago, and kafka-python fails the look-up at once with a
        retriable error (UnknownTopicOrPartition): a worker's start failed so on the 3-broker
        cluster. Such errors are retried until ``connect_timeout``."""
        deadline = time.monotonic() + self.transport.settings.connect_timeout
        with self.transport.errors(f"subscribe to {self.exchange!r}"):
            while True:
                try:
                    self.reader.seek_to_end(*partitions)
                    for tp in partitions:
                        left_ms = max(int((deadline - time.monotonic()) * 1000), 1)
                        if self.reader.position(tp, timeout_ms=left_ms) is None:
                            raise kerrors.KafkaTimeoutError(f"no end offset for {tp}")
                    return
                except kerrors.KafkaError as exc:
                    if not exc.retriable:
                        raise
                    if time.monotonic() >= deadline:
                        raise TransportError(
                            f"Kafka at {self.transport.address}: could not subscribe to "
                            f"{self.exchange!r}: its topic's end offsets were still unknown "
                            f"after connect_timeout ({self.transport.settings.connect_timeout} "
                            f"s): {exc}"
                        ) from exc
                    log.info(
                        "Kafka at %s: %r not listed yet: %s",
                        self.transport.address,
                        self.exchange,
                        exc,
                    )
                    time.sleep(_METADATA_RETRY_S)

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.buffer:
            left = 1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                batches = self.reader.poll(timeout_ms=int(left * 1000))
            except kerrors.KafkaError as exc:
                log.warning("Kafka at %s: broadcast poll failed: %s", self.transport.address, exc)
                time.sleep(min(left, 0.2))  # the broker is away: back off, bounded
                batches = {}
            for records in batches.values():
                for r in records:
                    try:
                        wire, _ = kafka_envelope.unpack_record(r.value, r.headers)
                    except ProtocolError as exc:
                        log.warning(
                            "Kafka at %s: unreadable broadcast on %r skipped: %s (%d bytes)",
                            self.transport.address,
                            self.exchange,
                            exc,
                            len(r.value or b""),
                        )
                        continue
                    self.buffer.append(wire)
            if not self.buffer and deadline is not None and time.monotonic() >= deadline:
                return None
        return self.buffer.popleft()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.reader.close(autocommit=False)
