"""Kafka-specific behaviour (SPEC.md §6.5): commits that never pass an unsettled record, delayed
records that block nothing, the dead-letter record, size and address errors, rebalances.

Every test talks to the Kafka broker of ``scripts/services up kafka`` and uses topics of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kafka
import pytest
from kafka.admin import OffsetSpec
from kafka.structs import TopicPartition

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.envelopes import kafka as kafka_envelope
from celeriac.transports import (
    REJECT_REASON_HEADER,
    BrokerUnavailable,
    Delivery,
    QueueSpec,
    Transport,
    TransportError,
    resolve,
)
from celeriac.transports.kafka import KafkaTransport, MessageTooLarge
from celeriac.transports.kafka.consumer import KafkaQueueConsumer
from tests.brokers import KAFKA_URL, require
from tests.protocol.vectors import load, read_wire
from tests.transports.raw_kafka import bootstrap
from tests.waiting import eventually

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[2]


def wire(n: int, **options: Any) -> WireMessage:
    return encode_task(new_task_message("kafka.task", (n,), **options))


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The process's next output line, waiting at most ``timeout`` seconds for it."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else f"<no line in {timeout}s>"


@pytest.fixture
def make() -> Iterator[Callable[..., KafkaTransport]]:
    require("kafka")
    opened: list[Transport] = []

    def open_one(**options: Any) -> KafkaTransport:
        transport = resolve(KAFKA_URL)(KAFKA_URL, **options)
        transport.connect()
        opened.append(transport)
        assert isinstance(transport, KafkaTransport)
        return transport

    yield open_one
    for transport in reversed(opened):
        transport.close()


@pytest.fixture
def admin() -> Iterator[kafka.KafkaAdminClient]:
    require("kafka")
    client = kafka.KafkaAdminClient(bootstrap_servers=bootstrap(KAFKA_URL))
    yield client
    client.close()


def new_queue(transport: Transport) -> str:
    name = f"kafka-test.{uuid.uuid4().hex[:12]}"
    transport.declare_queue(QueueSpec(name))
    return name


def committed(admin: kafka.KafkaAdminClient, queue: str) -> dict[int, int]:
    """The group's committed offset of each partition of ``queue`` (-1: none)."""
    group = f"celeriac.{queue}"
    offsets = admin.list_group_offsets(group).get(group, {})
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == queue}


def fetch_all(consumer: KafkaQueueConsumer, count: int, timeout: float = 20.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.fetch(count - len(got), timeout=0.5)
    return got


def test_commit_never_passes_an_unacked_offset(make: Any, admin: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    # Two batches: each lands on one partition (round robin), so two partitions hold 5 each.
    transport.publish_many(queue, [wire(i) for i in range(5)])
    transport.publish_many(queue, [wire(i) for i in range(5, 10)])
    consumer = transport.consumer([queue], prefetch=10)
    got = fetch_all(consumer, 10)
    assert sorted(number(d) for d in got) == list(range(10))
    by_partition: dict[int, list[Delivery]] = {}
    for d in got:
        by_partition.setdefault(d.tag[0].partition, []).append(d)
    assert len(by_partition) == 2, by_partition.keys()
    (p, first), (q, second) = sorted(by_partition.items())
    first.sort(key=lambda d: d.tag[1])
    second.sort(key=lambda d: d.tag[1])
    # Out of order, across partitions: everything but offset 1 of the first partition and
    # offset 0 of the second.
    consumer.ack([first[4], second[3], first[0], second[1], first[2], first[3], second[4]])
    consumer.ack([second[2]])
    offsets = committed(admin, queue)
    assert offsets[p] == first[1].tag[1], offsets  # stops at the unacked record
    assert offsets[q] == second[0].tag[1], offsets
    consumer.ack([second[0]])
    offsets = committed(admin, queue)
    assert offsets[q] == second[4].tag[1] + 1  # the gap closed: past the whole partition
    assert offsets[p] == first[1].tag[1]
    # A crash now (no close) leaves the first partition to be read again from offset 1.
    consumer.ack([first[1]])
    assert committed(admin, queue)[p] == first[4].tag[1] + 1
    consumer.close()
    assert transport.queue_length(queue) == 0


def test_unacked_records_come_back_after_close_acked_ones_above_may_too(make: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    transport.publish_many(queue, [wire(i) for i in range(6)])
    with transport.consumer([queue], prefetch=6) as consumer:
        got = sorted(fetch_all(consumer, 6), key=lambda d: d.tag[1])
        assert [number(d) for d in got] == list(range(6))
        assert transport.queue_length(queue) == 0  # held records are not ready
        consumer.ack(got[:2] + got[3:])  # 2 stays unacked
    assert transport.queue_length(queue) == 4  # offsets 2..5 come back, 3..5 acked already
    with transport.consumer([queue], prefetch=6) as consumer:
        again = fetch_all(consumer, 4)
        assert [number(d) for d in again] == [2, 3, 4, 5]
        consumer.ack(again)
    assert transport.queue_length(queue) == 0


def test_delayed_records_do_not_block_ready_ones_or_each_other(make: Any) -> None:
    # One partition everywhere: a later delayed record sits behind an earlier, longer one.
    transport = make(partitions=1)
    queue = new_queue(transport)
    start = time.monotonic()
    transport.publish(queue, wire(1), delay=60)
    transport.publish(queue, wire(2), delay=1.5)
    transport.publish(queue, wire(3))
    arrivals: dict[int, float] = {}
    with transport.consumer([queue], prefetch=5) as consumer:
        while 2 not in arrivals and time.monotonic() - start < 8:
            for d in consumer.fetch(5, timeout=0.2):
                arrivals[number(d)] = time.monotonic() - start
                consumer.ack([d])
        assert set(arrivals) == {2, 3}, arrivals
        assert arrivals[3] < 1.5, arrivals  # the ready record did not wait for the delayed ones
        assert 1.5 <= arrivals[2] <= 2.5, arrivals
        # The 60 s record is still held by the relay: its delay offset is not committed.
        assert consumer.readers[queue].delayed[0].due_ms > time.time() * 1000
    assert transport.queue_length(queue) == 0


def test_dead_letter_record_carries_the_reason_header(make: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    sent = wire(4)
    transport.publish(queue, sent)
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = fetch_all(consumer, 1)
        consumer.reject(delivery, "unknown-task: kafka.task")
    reader = kafka.KafkaConsumer(
        f"{queue}.dlq",
        bootstrap_servers=bootstrap(KAFKA_URL),
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=10_000,
    )
    try:
        record = next(iter(reader))
    finally:
        reader.close()
    assert kafka_envelope.header(record.headers, REJECT_REASON_HEADER) == (
        b"unknown-task: kafka.task"
    )
    assert kafka_envelope.header(record.headers, "content-type") == b"application/json"
    dead, info = kafka_envelope.unpack_record(record.value, record.headers)
    assert dead.body == sent.body
    assert dead.headers[REJECT_REASON_HEADER] == "unknown-task: kafka.task"
    assert record.key == sent.headers["id"].encode()
    assert info.routing_key == f"{queue}.dlq"
    assert transport.queue_length(queue) == 0


def test_oversize_message_is_refused_at_publish(make: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    big = wire(0, kwargs={"blob": "x" * (1024 * 1024)})
    with pytest.raises(MessageTooLarge) as info:
        transport.publish(queue, big)
    text = str(info.value)
    assert "1048576" in text and "compress" in text and "reference" in text
    with pytest.raises(MessageTooLarge):
        transport.publish_many(queue, [wire(1), big])
    assert transport.queue_length(queue) == 0  # nothing of the refused batch went out


def test_wrong_bootstrap_server_fails_fast_and_clearly() -> None:
    url = "kafka://:s3cret@127.0.0.1:1"
    start = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        resolve(url)(url).connect()
    assert time.monotonic() - start < 5
    text = str(info.value)
    assert "127.0.0.1:1" in text and "s3cret" not in text and "running" in text


def test_header_contradicting_the_envelope_is_unreadable(make: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    record = kafka_envelope.pack_wire(wire(9), queue)
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap(KAFKA_URL))
    try:
        producer.send(
            queue, value=record.value, headers=[("content-type", b"application/x-python-serialize")]
        ).get(timeout=30)
    finally:
        producer.close()
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = fetch_all(consumer, 1)
        assert delivery.message is None and delivery.error is not None
        assert "record.headers.content-type" in str(delivery.error)
        assert delivery.raw == record.value
        consumer.reject(delivery, f"malformed-envelope: {delivery.error}")
    assert transport.queue_length(f"{queue}.dlq") == 1


def test_rebalance_between_two_consumers_loses_nothing(make: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    for start in range(0, 200, 25):  # eight batches over the four partitions
        transport.publish_many(queue, [wire(i) for i in range(start, start + 25)])
    first = transport.consumer([queue], prefetch=30)
    held = fetch_all(first, 30)
    assert len(held) == 30
    held_numbers = {number(d) for d in held}
    second = make().consumer([queue], prefetch=30)
    seen_by_second: list[int] = []
    seen_by_first = list(held_numbers)
    try:
        # The second joins while the first holds 30 records: they stay with the first.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            batch = second.fetch(30, timeout=0.2)
            seen_by_second += [number(d) for d in batch]
            second.ack(batch)
            assert first.fetch(30, timeout=0.2) == []  # no room: keeps the membership only
        assert not held_numbers & set(seen_by_second)
        first.ack(held)
        deadline = time.monotonic() + 30
        while len(set(seen_by_first) | set(seen_by_second)) < 200:
            assert time.monotonic() < deadline, sorted(
                set(range(200)) - set(seen_by_first) - set(seen_by_second)
            )
            for consumer, seen in ((first, seen_by_first), (second, seen_by_second)):
                batch = consumer.fetch(30, timeout=0.2)
                seen += [number(d) for d in batch]
                consumer.ack(batch)
    finally:
        first.close()
        second.close()
    assert set(seen_by_first) | set(seen_by_second) == set(range(200))
    assert seen_by_second, "the second consumer never got a partition"
    assert transport.queue_length(queue) == 0


def test_purge_counts_ready_records_and_deletes_them(make: Any, admin: Any) -> None:
    transport = make()
    queue = new_queue(transport)
    transport.publish_many(queue, [wire(i) for i in range(5)])
    transport.publish_many(queue, [wire(i) for i in range(5, 8)])
    with transport.consumer([queue], prefetch=8) as consumer:
        consumer.ack(fetch_all(consumer, 2)[:2])
    assert transport.queue_length(queue) == 6
    assert transport.purge(queue) == 6
    tps = {TopicPartition(queue, p): OffsetSpec.EARLIEST for p in range(4)}
    starts = admin.list_partition_offsets(tps)
    assert sum(o.offset for o in starts.values()) == 8  # deleted from the log, not skipped
    transport.publish(queue, wire(99))
    with transport.consumer([queue], prefetch=8) as consumer:
        assert [number(d) for d in fetch_all(consumer, 1)] == [99]
        assert consumer.fetch(8, timeout=1.0) == []


def test_broadcast_polls_even_with_no_time_to_wait(make: Any) -> None:
    exchange = f"kafka-test.{uuid.uuid4().hex[:8]}"
    subscription = make().subscribe(exchange)
    try:
        make().broadcast(exchange, wire(5))
        # A worker checks for control messages with timeout=0 between other work.
        got = eventually(lambda: subscription.get(timeout=0), what="broadcast with timeout=0")
        assert decode_task(got).args == (5,)
        assert subscription.get(timeout=0) is None
    finally:
        subscription.close()


def test_options_from_the_url_and_clear_errors_for_wrong_ones() -> None:
    transport = resolve("kafka://127.0.0.1:19092,127.0.0.1:19093?partitions=2&check_crcs=false")(
        "kafka://127.0.0.1:19092,127.0.0.1:19093?partitions=2&check_crcs=false",
        session_timeout_ms=6000,
        visibility_timeout=2,  # other transports' option: accepted, means nothing here
    )
    assert isinstance(transport, KafkaTransport)
    assert transport.servers == ["127.0.0.1:19092", "127.0.0.1:19093"]
    assert transport.settings.partitions == 2 and transport.settings.check_crcs is False
    assert transport.settings.session_timeout_ms == 6000
    with pytest.raises(TransportError, match="did you mean 'partitions'"):
        resolve(KAFKA_URL)(KAFKA_URL, partition=3)
    with pytest.raises(TransportError, match="at most a third of session_timeout_ms"):
        resolve(KAFKA_URL)(KAFKA_URL, heartbeat_interval_ms=5000, session_timeout_ms=6000)
    with pytest.raises(TransportError, match="cannot be a Kafka topic"):
        transport.declare_queue(QueueSpec("no spaces allowed"))
    with pytest.raises(TransportError, match="reserved"):
        transport.declare_queue(QueueSpec("jobs.delay"))


def test_synthetic_vectors_are_read_from_the_topic_and_written_alike(make: Any) -> None:
    """SPEC.md §6.5 records (key, headers, value) as the vectors give them, produced with the bare
    client, come out of the transport as the vectors expect; ours carry the same key and headers."""
    paths = sorted((REPO / "protocol/vectors/synthetic/kafka").glob("*.json"))
    assert len(paths) >= 2
    transport = make()
    queue = new_queue(transport)
    vectors = [load(p) for p in paths]
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap(KAFKA_URL))
    try:
        for v in vectors:
            w = v["wire"]
            headers = [(k, val.encode()) for k, val in w["headers"].items()]
            producer.send(
                queue, key=w["key"].encode(), value=w["payload"].encode(), headers=headers
            ).get(timeout=30)
    finally:
        producer.close()
    with transport.consumer([queue], prefetch=len(vectors)) as consumer:
        got = fetch_all(consumer, len(vectors))
        consumer.ack(got)
    assert all(d.message is not None for d in got), [d.error for d in got]
    read = [(dict(d.message.headers), decode_task(d.message)) for d in got if d.message]
    for v in vectors:
        want = v["expect"]
        assert any(
            headers == want["headers"]
            and list(task.args) == want["args"]
            and task.kwargs == want["kwargs"]
            for headers, task in read
        ), v["name"]
        ours = kafka_envelope.pack_wire(read_wire(v), v["wire"]["topic"])
        assert ours.key == v["wire"]["key"].encode()
        assert dict(ours.headers) == {k: val.encode() for k, val in v["wire"]["headers"].items()}


def test_records_of_a_killed_consumer_come_back_marked_redelivered(make: Any) -> None:
    url = f"{KAFKA_URL}?session_timeout_ms=6000"
    transport = make()
    queue = new_queue(transport)
    transport.publish_many(queue, [wire(i) for i in range(5)])
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("consumer_proc.py")), url, queue, "5"],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert read_line(proc, timeout=30) == "HOLDING 5"
        assert transport.queue_length(queue) == 0  # held by a live member: not ready
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with transport.consumer([queue], prefetch=5) as consumer:
        got = fetch_all(consumer, 5, timeout=30)
        consumer.ack(got)
    assert sorted(number(d) for d in got) == list(range(5))
    assert all(d.redelivered for d in got)  # below the dead member's handed-out offset


def test_one_consumer_of_two_queues_shares_its_prefetch(make: Any) -> None:
    transport = make()
    first, second = new_queue(transport), new_queue(transport)
    transport.publish_many(first, [wire(i) for i in range(3)])
    transport.publish_many(second, [wire(i) for i in range(10, 13)])
    with transport.consumer([first, second], prefetch=4) as consumer:
        held: list[Delivery] = []
        deadline = time.monotonic() + 20
        while len(held) < 4 and time.monotonic() < deadline:
            held += consumer.fetch(6, timeout=0.5)
        assert len(held) == 4
        assert consumer.fetch(6, timeout=0.5) == []  # no room across both queues
        consumer.ack(held)
        rest = fetch_all(consumer, 2)
        consumer.ack(rest)
    got = sorted(number(d) for d in held + rest)
    assert got == [0, 1, 2, 10, 11, 12]
    assert {d.queue for d in held + rest} == {first, second}
    assert transport.queue_length(first) == transport.queue_length(second) == 0


def test_a_partition_paused_with_its_records_in_line_is_read_again_once_resumed(admin: Any) -> None:
    """kafka-python 3.0 parks the fetched records of a partition paused while they are next in
    line, leaves the partition out of every fetch until they are restored, and restores them only
    when no other partition's batch is in line: under steady traffic, never. The consumer pauses
    partitions whenever its prefetch is full, so a partition was stranded with a live owner (the
    fault suite lost 15 of 200 tasks that way). ``workarounds.unpark`` before each poll fixes it."""
    from kafka.admin import NewTopic

    from celeriac.transports.kafka import workarounds

    servers = bootstrap(KAFKA_URL)
    topic = f"kafka-test.park-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 2, 1)])
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    producer = kafka.KafkaProducer(bootstrap_servers=servers)
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    got = {p0: 0, p1: 0}

    def poll() -> None:
        workarounds.unpark(consumer)
        for tp, records in consumer.poll(timeout_ms=200, max_records=5).items():
            got[tp] += len(records)

    try:
        for partition in (0, 1):
            for _ in range(300):
                producer.send(topic, b"x" * 100, partition=partition)
        producer.flush()
        consumer.assign([p0, p1])
        consumer.seek_to_beginning(p0, p1)

        def p1_in_line() -> bool:
            poll()
            current = consumer._fetcher._next_partition_records
            return bool(current) and current.topic_partition == p1

        eventually(p1_in_line, 30, "partition 1's records next in line", interval=0)
        for _ in range(300):  # partition 0's next batch, to take the in-line slot
            producer.send(topic, b"y" * 100, partition=0)
        producer.flush()
        eventually(lambda: consumer._fetcher._completed_fetches, 10, "a fetched batch queued")
        consumer.pause(p1)
        poll()
        assert p1 in consumer._fetcher._paused_partition_records, "the setup did not park p1"
        consumer.resume(p1)
        eventually(lambda: (poll(), got[p1] == 300)[1], 30, "every record of partition 1")
        eventually(lambda: (poll(), got[p0] == 600)[1], 30, "every record of partition 0")
    finally:
        consumer.close()
        producer.close()
        admin.delete_topics([topic])
