"""On a Kafka cluster a topic just created may not be listed yet by the broker asked next: the
broadcast subscription waits for its partitions (bounded) instead of subscribing to none (a
worker's start failed so on the 3-broker cluster, with kafka-python's 'No partitions are
currently assigned', and then because its reader asked a broker that did not list it yet).
Unit tests: the metadata answers are scripted, nothing is contacted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import kafka
import kafka.errors as kerrors
import pytest

from celeriac.transports.base import QueueSpec
from celeriac.transports.errors import TransportError
from celeriac.transports.kafka.subscription import KafkaSubscription
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


class _Reader:
    """A stand-in for kafka-python's consumer whose end-offset look-ups fail ``fails`` times
    with ``error`` before answering (as a broker that does not list the topic yet does)."""

    def __init__(self, fails: int, error: type[Exception]) -> None:
        self.fails = fails
        self.error = error
        self.lookups = 0
        self.closed = False

    def assign(self, partitions: object) -> None:
        pass

    def seek_to_end(self, *partitions: object) -> None:
        pass

    def position(self, tp: object, timeout_ms: int | None = None) -> int:
        self.lookups += 1
        if self.lookups <= self.fails:
            raise self.error("celeriac.bcast.celery.pidbox")
        return 7

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


def subscribing(
    monkeypatch: pytest.MonkeyPatch, reader: _Reader
) -> tuple[KafkaTransport, Callable[[], KafkaSubscription]]:
    transport, _ = scripted(monkeypatch, [[0], [0]])
    monkeypatch.setattr(kafka, "KafkaConsumer", lambda **config: reader)
    return transport, lambda: KafkaSubscription(transport, "celery.pidbox")


def test_a_topic_the_readers_broker_does_not_list_yet_is_asked_for_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The look-up that failed a worker's start on the 3-broker cluster (its reader asked a
    broker that did not list the just-created topic yet) is made again until it answers."""
    reader = _Reader(3, kerrors.UnknownTopicOrPartitionError)
    _, subscribe = subscribing(monkeypatch, reader)
    subscribe()
    assert reader.lookups == 4
    assert not reader.closed


def test_a_topic_never_listed_fails_clearly_within_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = _Reader(10**9, kerrors.UnknownTopicOrPartitionError)
    _, subscribe = subscribing(monkeypatch, reader)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"subscribe to 'celery\.pidbox'.*connect_timeout"):
        subscribe()
    assert time.monotonic() - started < 3.0  # connect_timeout is 1 s here
    assert reader.closed


def test_an_error_that_is_not_retriable_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = _Reader(10**9, kerrors.TopicAuthorizationFailedError)
    _, subscribe = subscribing(monkeypatch, reader)
    with pytest.raises(TransportError, match=r"subscribe to 'celery\.pidbox'.*Authorization"):
        subscribe()
    assert reader.lookups == 1


class _Admin:
    """Creates topics (the broker's reply) but, as a broker that has not caught up yet, lists
    none of them."""

    def create_topics(self, spec: dict[str, Any], **options: Any) -> dict[str, Any]:
        return {"topics": [{"name": name, "error_code": 0} for name in spec]}

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [{"topic": t, "partitions": []} for t in topics]


def test_topics_created_here_exist_before_every_broker_lists_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker that declares a new queue consumes its delay topic too, although the broker it
    asks next may not list that topic yet (it used to leave the delay topic out: countdowns of
    that queue would never have been relayed by that worker)."""
    transport = KafkaTransport("kafka://127.0.0.1:1")
    monkeypatch.setattr(transport, "admin", _Admin)
    transport.declare_queue(QueueSpec("orders"))
    assert transport.partitions("orders.delay") == []  # what the broker asked says
    assert transport.exists("orders.delay")
    assert transport.exists("orders")
    assert not transport.exists("invoices.delay")
