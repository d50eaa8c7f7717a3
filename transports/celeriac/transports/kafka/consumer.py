"""The Kafka consumer: one group member per queue, per-message acks emulated on offsets.

kafka-python runs group work (joins, heartbeats, rebalance callbacks) on its own IO thread;
everything else runs on the caller's thread. The callbacks and the caller share each reader's
state under its lock, and no kafka-python call that waits on the IO thread is made under it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import kafka
import kafka.errors as kerrors
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata, TopicPartition

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import kafka as kafka_envelope
from celeriac.protocol.envelopes.kafka import (
    DELIVER_AT_HEADER,
    REDELIVERED_HEADER,
    REJECT_REASON_HEADER,
    KafkaRecord,
)

from ..base import Consumer, Delivery, dead_letter_queue
from ..dead_letter import dead_letter_message
from . import workarounds
from .assignor import HoldingAssignor
from .offsets import Ledger, PartitionLedger
from .topics import delay_topic, group_id

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["KafkaQueueConsumer", "QueueReader", "fetch_bytes"]

log = logging.getLogger("celeriac.transports.kafka")
# Commits and offset look-ups give up after this long (the broker may be restarting); a commit
# that did not land is made again with the next settle, and is at worst a redelivery.
_COMMIT_TIMEOUT_MS = 5_000
# Several queues share one fetch call: each reader waits this long before the next gets a turn.
_SLICE_S = 0.05
# Bytes fetched per partition and request, per unit of prefetch (kafka-python's default is 1 MiB
# whatever the prefetch): a worker that holds 32 tasks need not buffer 1 MiB per partition, and
# each MiB fetched stays in the process's heap. A record larger than the limit still comes (the
# broker always returns at least one batch).
_FETCH_BYTES_PER_PREFETCH = 2048
_FETCH_BYTES_MIN, _FETCH_BYTES_MAX = 64 * 1024, 1024 * 1024


def fetch_bytes(prefetch: int) -> int:
    """``max_partition_fetch_bytes`` for a consumer holding at most ``prefetch`` records."""
    return min(max(prefetch * _FETCH_BYTES_PER_PREFETCH, _FETCH_BYTES_MIN), _FETCH_BYTES_MAX)


@dataclass(order=True, slots=True)
class _Delayed:
    """A delay-topic record held until it is due; its offset is committed once relayed."""

    due_ms: int
    seq: int
    tp: TopicPartition = field(compare=False)
    offset: int = field(compare=False)
    epoch: int = field(compare=False)
    record: KafkaRecord = field(compare=False)


class QueueReader(ConsumerRebalanceListener):  # type: ignore[misc]
    """The group member for one queue: reads its topic and relays its delay topic."""

    def __init__(self, transport: KafkaTransport, queue: str, prefetch: int = 100) -> None:
        self.t = transport
        self.queue = queue
        self.delay = delay_topic(queue)
        self.lock = threading.Lock()
        self.ledger = Ledger()
        self.handover: set[TopicPartition] = set()
        self.delayed: list[_Delayed] = []
        self._seq = itertools.count()
        s = transport.settings
        # A queue declared elsewhere (by Kombu) may have no delay topic.
        topics = [queue] + ([self.delay] if transport.exists(self.delay) else [])
        with transport.errors(f"consume from {queue!r}"):
            self.kc = kafka.KafkaConsumer(
                **transport.client_config(),
                group_id=group_id(queue),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                partition_assignment_strategy=[HoldingAssignor(self.held, self.set_handover)],
                session_timeout_ms=s.session_timeout_ms,
                heartbeat_interval_ms=s.heartbeat_interval_ms,
                max_poll_interval_ms=s.max_poll_interval_ms,
                fetch_max_wait_ms=s.fetch_max_wait_ms,
                max_partition_fetch_bytes=fetch_bytes(prefetch),
                check_crcs=s.check_crcs,
            )
            self.kc.subscribe(topics, listener=self)
            for topic in topics:
                # Known before the first join: a leader that assigns without the topics'
                # metadata hands out nothing, and the rebalance that follows can stall
                # (workarounds.unstall).
                self.kc.partitions_for_topic(topic)
        self._joining_since: float | None = None

    # -- group callbacks (kafka-python's IO thread) ---------------------------------------------
    def held(self) -> list[TopicPartition]:
        """Partitions to keep through a rebalance: records unsettled, or settled but not yet
        committed (a commit refused during the rebalance); moving them would redeliver."""
        with self.lock:
            return self.ledger.held()

    def set_handover(self, partitions: set[TopicPartition]) -> None:
        with self.lock:
            self.handover = partitions

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Nothing to save: every settle commits at once. What we hold stays ours unless the
        # assignment that follows gives it to another member (the assignor avoids that).
        self._joining_since = time.monotonic()

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._joining_since = None
        kept: list[tuple[TopicPartition, int]] = []
        with self.lock:
            self._forget([tp for tp in self.ledger.partitions if tp not in set(assigned)])
            for tp, ledger in self.ledger.partitions.items():
                if ledger.position is not None:
                    kept.append((tp, ledger.position))
        for tp, position in kept:
            # Read on after what we handed out, not from the committed offset (which stays at
            # our lowest unsettled record).
            self.kc.seek(tp, position)

    def on_partitions_lost(self, lost: Any) -> None:
        with self.lock:
            self._forget(list(lost))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        """Drop partitions we no longer own; settling their deliveries does nothing now."""
        if not partitions:
            return
        gone = set(partitions)
        self.ledger.drop(gone)
        self.delayed = [d for d in self.delayed if d.tp not in gone]
        heapq.heapify(self.delayed)
        self.handover -= gone

    # -- the caller's thread --------------------------------------------------------------------
    def unsettled(self) -> int:
        with self.lock:
            return sum(
                len(ledger.outstanding)
                for tp, ledger in self.ledger.partitions.items()
                if tp.topic == self.queue
            )

    def step(self, room: int, timeout: float) -> list[Delivery]:
        """Poll once for at most ``room`` deliveries (0: only keep the membership and relay)."""
        self.relay_due()
        with self.lock:
            if self.delayed:
                timeout = min(timeout, max(self.delayed[0].due_ms / 1000 - time.time(), 0.0))
        self._pause(room)
        workarounds.claim_finished_join(self.kc)
        try:
            batches = self.kc.poll(
                timeout_ms=int(timeout * 1000), max_records=room if room > 0 else 500
            )
        except kerrors.KafkaError as exc:
            log.warning("Kafka at %s: poll of %r failed: %s", self.t.address, self.queue, exc)
            time.sleep(min(timeout, 0.2))  # the broker is away: back off, bounded
            return []
        workarounds.unstall(self.kc, self._joining_since)
        handed = {
            tp: self._handed_before(tp)
            for tp in batches
            if tp.topic == self.queue and tp not in self.ledger.partitions
        }
        taken: list[tuple[TopicPartition, PartitionLedger, list[Any]]] = []
        count = 0
        unread: list[tuple[TopicPartition, int]] = []
        queue = self.queue
        with self.lock:
            for tp, records in batches.items():
                ledger = self.ledger.get(tp)
                if tp in handed:
                    ledger.handed_before = handed[tp]
                if tp.topic == queue:
                    if count + len(records) > room:
                        # A partition assigned during this poll was not paused yet: give its
                        # records back to the log rather than exceed the prefetch limit.
                        keep = max(room - count, 0)
                        if keep < len(records):
                            unread.append((tp, records[keep].offset))
                        records = records[:keep]
                    ledger.hand_out_many([r.offset for r in records])
                    taken.append((tp, ledger, records))
                    count += len(records)
                    continue
                for r in records:
                    ledger.hand_out(r.offset)
                    record = KafkaRecord(r.key, r.value or b"", tuple(r.headers or ()))
                    due = kafka_envelope.deliver_at(r.headers) or 0
                    entry = _Delayed(due, next(self._seq), tp, r.offset, ledger.epoch, record)
                    heapq.heappush(self.delayed, entry)
        for tp, offset in unread:
            with contextlib.suppress(kerrors.IllegalStateError):
                self.kc.seek(tp, offset)
        # Record how far we handed out, so queue_length leaves these out. The commit travels
        # while the records are decoded (a commit takes the broker several ms), and has landed
        # or failed when this returns.
        commit = self._send_commit() if taken or self.handover else None
        out: list[Delivery] = []
        for tp, ledger, records in taken:
            out += self._deliveries(tp, ledger, records)
        if commit is not None:
            self._finish_commit(*commit)
        self.relay_due()
        self._maybe_hand_over()
        return out

    def _deliveries(
        self, tp: TopicPartition, ledger: PartitionLedger, records: list[Any]
    ) -> list[Delivery]:
        """The deliveries of one partition's records (a flat loop: it runs for every record)."""
        queue, epoch, unpack = self.queue, ledger.epoch, kafka_envelope.unpack_consumed
        # Offsets below this were handed out before we owned the partition: seen already.
        before = -1 if ledger.handed_before is None else ledger.handed_before
        out = []
        for r in records:
            offset, value = r.offset, r.value
            # The tag holds what settling (partition, offset, epoch) and requeueing (key,
            # headers) need: one hashable tuple a record, not a tuple and an extra dict.
            tag = (tp, offset, epoch, r.key, tuple(r.headers or ()))
            try:
                wire, redelivered = unpack(value, r.headers)
            except ProtocolError as exc:
                out.append(Delivery(queue, None, tag, offset < before, value or b"", exc))
                continue
            out.append(Delivery(queue, wire, tag, redelivered or offset < before, value))
        return out

    def _handed_before(self, tp: TopicPartition) -> int:
        """How far the group had handed records out of ``tp`` (the commit's metadata)."""
        try:
            committed = self.kc.committed(tp, metadata=True, timeout_ms=_COMMIT_TIMEOUT_MS)
            return int(committed.metadata) if committed is not None else 0
        except (kerrors.KafkaError, ValueError, AttributeError):
            return 0

    def _pause(self, room: int) -> None:
        """Stop reading what we have no room for, and what is to be handed over."""
        with self.lock:
            handover = set(self.handover)
            delay_full = len(self.delayed) >= self.t.settings.delay_buffer
        assigned = self.kc.assignment()
        want = {
            tp
            for tp in assigned
            if tp in handover
            or (tp.topic == self.queue and room <= 0)
            or (tp.topic == self.delay and delay_full)
        }
        paused = self.kc.paused()
        try:
            if want - paused:
                self.kc.pause(*(want - paused))
            if (paused - want) & assigned:
                self.kc.resume(*((paused - want) & assigned))
        except kerrors.IllegalStateError:
            pass  # the assignment changed meanwhile; the next step pauses against the new one
        workarounds.unpark(self.kc)

    def relay_due(self) -> None:
        """Produce the due delayed records to the queue, then let their offsets be committed."""
        now_ms = int(time.time() * 1000)
        due: list[_Delayed] = []
        with self.lock:
            while self.delayed and self.delayed[0].due_ms <= now_ms:
                due.append(heapq.heappop(self.delayed))
        if not due:
            return
        records = []
        for d in due:
            headers = tuple((k, v) for k, v in d.record.headers if k != DELIVER_AT_HEADER)
            records.append((self.queue, KafkaRecord(d.record.key, d.record.value, headers)))
        try:
            self.t.send(records)
        except kerrors.KafkaError as exc:
            log.warning("Kafka at %s: delayed records not relayed yet: %s", self.t.address, exc)
            with self.lock:
                for d in due:
                    heapq.heappush(self.delayed, d)
            return
        with self.lock:
            for d in due:
                self.ledger.settle(d.tp, d.offset, d.epoch)
        self.commit()

    def settle(self, deliveries: Iterable[Delivery]) -> None:
        with self.lock:
            settle = self.ledger.settle
            for d in deliveries:
                tag = d.tag
                settle(tag[0], tag[1], tag[2])
        self.commit()
        self._maybe_hand_over()

    def commit(self, *, releasing: bool = False) -> bool:
        """Commit each owned partition up to its lowest unsettled record (True: landed).

        The metadata says how far records were handed out, so the queue's length leaves out what
        a live member holds; ``releasing`` gives the unsettled records back instead."""
        pending = self._pending(releasing)
        if not pending:
            return True
        offsets = {tp: OffsetAndMetadata(w[0], str(w[1]), -1) for tp, (_, w) in pending.items()}
        try:
            self.kc.commit(offsets, timeout_ms=_COMMIT_TIMEOUT_MS)
        except kerrors.KafkaError as exc:
            # A rebalance or a restarting broker: the next settle commits again.
            log.info("Kafka at %s: commit for %r deferred: %s", self.t.address, self.queue, exc)
            return False
        self._committed(pending)
        return True

    def _pending(self, releasing: bool = False) -> dict[TopicPartition, tuple[int, Any]]:
        """Per owned partition whose commit is behind: (epoch, (offset, handed-out position))."""
        owned = self.kc.assignment()
        with self.lock:
            pending = {}
            for tp, ledger in self.ledger.partitions.items():
                wanted = ledger.pending_commit(releasing=releasing) if tp in owned else None
                if wanted is not None:
                    pending[tp] = (ledger.epoch, wanted)
        return pending

    def _committed(self, pending: dict[TopicPartition, tuple[int, Any]]) -> None:
        with self.lock:
            for tp, (epoch, wanted) in pending.items():
                current = self.ledger.partitions.get(tp)
                if current is not None and current.epoch == epoch:
                    current.committed = wanted

    def _send_commit(self) -> tuple[dict[TopicPartition, Any], threading.Event, Any] | None:
        """Start a commit without waiting for it (see :meth:`_finish_commit`); None: nothing to
        commit, or it could not be sent (the next settle commits again)."""
        pending = self._pending()
        if not pending:
            return None
        offsets = {tp: OffsetAndMetadata(w[0], str(w[1]), -1) for tp, (_, w) in pending.items()}
        done = threading.Event()
        try:
            future = self.kc.commit_async(offsets)
        except kerrors.KafkaError as exc:
            log.info("Kafka at %s: commit for %r deferred: %s", self.t.address, self.queue, exc)
            return None
        future.add_both(lambda _: done.set())
        return pending, done, future

    def _finish_commit(
        self, pending: dict[TopicPartition, Any], done: threading.Event, future: Any
    ) -> bool:
        """Wait (bounded) for a commit :meth:`_send_commit` started (True: landed)."""
        if not done.wait(_COMMIT_TIMEOUT_MS / 1000):
            log.info("Kafka at %s: commit for %r not answered yet", self.t.address, self.queue)
            return False
        if future.exception is not None:
            # A rebalance or a restarting broker: the next settle commits again.
            log.info(
                "Kafka at %s: commit for %r deferred: %s",
                self.t.address, self.queue, future.exception,
            )  # fmt: skip
            return False
        self._committed(pending)
        return True

    def _maybe_hand_over(self) -> None:
        """Once the partitions another member should have are settled, ask for a rebalance."""
        with self.lock:
            if not self.handover:
                return
            for tp in self.handover:
                ledger = self.ledger.partitions.get(tp)
                if ledger is not None and (ledger.outstanding or ledger.pending_commit()):
                    return
            self.handover = set()
        workarounds.request_rejoin(self.kc)

    def close(self) -> None:
        self.commit(releasing=True)
        try:
            # Bounded: a LeaveGroup queued behind a JoinGroup the broker is holding would
            # otherwise wait out the whole request timeout.
            self.kc.close(autocommit=False, timeout_ms=_COMMIT_TIMEOUT_MS)
        except kerrors.KafkaError as exc:
            log.info("Kafka at %s: closing the %r consumer: %s", self.t.address, self.queue, exc)


class KafkaQueueConsumer(Consumer):
    """Reads one or more queues; at most ``prefetch`` deliveries unsettled across them."""

    def __init__(self, transport: KafkaTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.t = transport
        self.readers: dict[str, QueueReader] = {}
        try:
            for queue in dict.fromkeys(queues):
                self.readers[queue] = QueueReader(transport, queue, prefetch)
        except BaseException:
            self.close()
            raise
        self._turn = 0

    def unsettled(self) -> int:
        return sum(r.unsettled() for r in self.readers.values())

    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        end = None if timeout is None else time.monotonic() + timeout
        readers = list(self.readers.values())
        out: list[Delivery] = []
        while True:
            for i in range(len(readers)):
                reader = readers[(self._turn + i) % len(readers)]
                room = min(max_messages - len(out), self.prefetch - self.unsettled())
                left = 3600.0 if end is None else max(end - time.monotonic(), 0.0)
                wait = 0.0 if out else (left if len(readers) == 1 else min(left, _SLICE_S))
                out += reader.step(room, wait)
            self._turn += 1
            if out or (end is not None and time.monotonic() >= end):
                return out

    def _reader(self, delivery: Delivery) -> QueueReader:
        return self.readers[delivery.queue]

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        by_queue: dict[str, list[Delivery]] = {}
        for d in deliveries:
            by_queue.setdefault(d.queue, []).append(d)
        for queue, batch in by_queue.items():
            self.readers[queue].settle(batch)

    def reject(self, delivery: Delivery, reason: str) -> None:
        target = dead_letter_queue(delivery.queue)
        record = self.t.record(target, dead_letter_message(delivery, reason))
        record = kafka_envelope.with_headers(record, {REJECT_REASON_HEADER: reason.encode()})
        with self.t.errors(f"dead-letter to {target!r}"):
            self.t.send([(target, record)])
        self._reader(delivery).settle([delivery])

    def requeue(self, delivery: Delivery) -> None:
        """Produce the record again (marked redelivered), then settle the original."""
        key, headers = delivery.tag[3], delivery.tag[4]
        kept = tuple((k, v) for k, v in headers if k != REDELIVERED_HEADER)
        record = KafkaRecord(key, delivery.raw or b"", (*kept, (REDELIVERED_HEADER, b"1")))
        with self.t.errors(f"requeue to {delivery.queue!r}"):
            self.t.send([(delivery.queue, record)])
        self._reader(delivery).settle([delivery])

    def close(self) -> None:
        readers, self.readers = list(self.readers.values()), {}
        for reader in readers:
            reader.close()
