"""On a Kafka cluster a topic just created may not be listed yet by the broker asked next: the
broadcast subscription waits for its partitions (bounded) instead of subscribing to none (a
worker's start failed so on the 3-broker cluster, with kafka-python's 'No partitions are
currently assigned'). Unit tests: the metadata answers are scripted, nothing is contacted."""

from __future__ import annotations

import pytest

from celeriac.transports.errors import TransportError
from celeriac.transports.kafka.transport import KafkaTransport


def scripted(
    monkeypatch: pytest.MonkeyPatch, answers: list[list[int]]
) -> tuple[KafkaTransport, list[dict[str, int]]]:
    """A transport whose metadata answers ``answers`` in turn (then []); the topics created."""
    transport = KafkaTransport("kafka://127.0.0.1:1", connect_timeout=1.0)
    created: list[dict[str, int]] = []
    monkeypatch.setattr(transport, "create_topics", created.append)
    monkeypatch.setattr(transport, "partitions", lambda topic: answers.pop(0) if answers else [])
    return transport, created


def test_partitions_listed_late_are_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    transport, created = scripted(monkeypatch, [[], [], [], [0]])
    found = transport.broadcast_partitions("celery.pidbox")
    assert [(tp.topic, tp.partition) for tp in found] == [("celeriac.bcast.celery.pidbox", 0)]
    assert created == [{"celeriac.bcast.celery.pidbox": 1}]


def test_partitions_never_listed_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    transport, _ = scripted(monkeypatch, [])
    with pytest.raises(TransportError, match=r"bcast\.x.*no broker listed.*connect_timeout"):
        transport.broadcast_partitions("x")
