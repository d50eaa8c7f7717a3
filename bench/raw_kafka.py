"""The raw Kafka figure beside the kafka:// transport's: a bare kafka-python loop.

Publish: ``count`` records of ``payload`` bytes sent without waiting, one flush at the end (the
broker has them all when it returns). Consume: one consumer in a fresh group reads them back,
committing after each poll of up to 1,000 records. The topic has four partitions, as the
transport's queues do.
"""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import urlsplit

import kafka

KAFKA_URL = os.environ.get("CELERIAC_TEST_KAFKA_URL", "kafka://127.0.0.1:19092")
PARTITIONS = 4


def _servers(url: str = KAFKA_URL) -> list[str]:
    return [s for s in urlsplit(url).netloc.rpartition("@")[2].split(",") if s]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


#: Process CPU seconds a record of the last consume (the caller's and kafka-python's threads).
LAST_CPU = [0.0]
#: What the kafka:// transport's records carry beside the value (``--headers``).
HEADERS = [
    ("content-type", b"application/json"),
    ("content-encoding", b"utf-8"),
    ("x-celeriac-task", b"bench.noop"),
]


def raw_kafka(count: int, payload: int, headers: bool = False) -> tuple[float, float]:
    """(publish, consume) messages per second of a bare kafka-python loop; ``headers``: each
    record with a 36-byte key and the transport's three headers, as the transport sends it."""
    servers = _servers()
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = kafka.KafkaAdminClient(bootstrap_servers=servers)
    try:
        spec = {topic: {"num_partitions": PARTITIONS, "replication_factor": 1}}
        admin.create_topics(spec, wait_for_metadata=True)
        value = b"x" * payload
        producer = kafka.KafkaProducer(
            bootstrap_servers=servers, acks="all", linger_ms=5, batch_size=256 * 1024
        )
        try:
            start = time.perf_counter()
            for _ in range(count):
                if headers:
                    key = uuid.uuid4().hex.encode() + b"-abc"
                    producer.send(topic, value=value, key=key, headers=HEADERS)
                else:
                    producer.send(topic, value=value)
            producer.flush()
            publish = _rate(count, time.perf_counter() - start)
        finally:
            producer.close()
        consumer = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=servers,
            group_id=f"bench.raw.{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        try:
            received = 0
            start, cpu = time.perf_counter(), time.process_time()
            deadline = time.monotonic() + 120
            while received < count and time.monotonic() < deadline:
                batches = consumer.poll(timeout_ms=1000, max_records=1000)
                received += sum(len(records) for records in batches.values())
                if batches:
                    consumer.commit()
            consume = _rate(received, time.perf_counter() - start)
            cpu = time.process_time() - cpu
        finally:
            consumer.close(autocommit=False)
        if received < count:
            raise RuntimeError(f"raw Kafka: only {received} of {count} records came back")
        LAST_CPU[0] = cpu / count
        return publish, consume
    finally:
        admin.delete_topics([topic])
        admin.close()


if __name__ == "__main__":
    import sys

    with_headers = "--headers" in sys.argv
    pub, con = raw_kafka(50_000, 801, headers=with_headers)
    cpu = LAST_CPU[0] * 1e6
    what = "key and headers" if with_headers else "value only"
    print(f"raw kafka-python ({what}): publish {pub:,.0f} msg/s, consume {con:,.0f} msg/s, "
          f"{cpu:.1f} us CPU a record consumed")  # fmt: skip
