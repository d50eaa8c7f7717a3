"""Raw access to the test Kafka broker, for contract tests that need bytes no transport wrote."""

from __future__ import annotations

from urllib.parse import urlsplit

import kafka


def bootstrap(url: str) -> list[str]:
    """The ``host:port`` list of a ``kafka://`` URL."""
    return [s for s in urlsplit(url).netloc.rpartition("@")[2].split(",") if s]


def inject(url: str, queue: str, raw: bytes) -> None:
    """Produce ``raw`` as a record value (no headers) to the queue's topic, with kafka-python."""
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap(url), acks="all")
    try:
        producer.send(queue, value=raw).get(timeout=30)
    finally:
        producer.close(timeout=5)
