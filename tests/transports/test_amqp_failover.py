"""RabbitMQ URL lists, failover order, options applied or refused, and broker cancels."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pika
import pytest

from celeriac.protocol import WireMessage
from celeriac.transports import BrokerUnavailable, QueueSpec, TransportError, open_transport
from celeriac.transports.amqp.connection import parameters
from celeriac.transports.amqp.options import parse_options
from celeriac.transports.amqp.transport import AmqpTransport
from celeriac.transports.failover import Failover, join_urls, split_urls
from celeriac.transports.registry import redact_url
from tests.brokers import AMQP_URL, require
from tests.waiting import eventually

# Nothing listens here: a node of the cluster that is down.
DEAD = "amqp://guest:s3cret-dead@127.0.0.1:5999//"


def message(n: int) -> WireMessage:
    return WireMessage(
        body=f"[[{n}], {{}}, {{}}]".encode(),
        content_type="application/json",
        content_encoding="utf-8",
        headers={"id": str(uuid.uuid4()), "task": "t"},
        properties={},
    )


# -- URL lists and failover order (no broker) --------------------------------------------------
def test_celery_url_lists_split_and_join_in_both_spellings() -> None:
    assert split_urls("amqp://a//; amqp://b//;") == ["amqp://a//", "amqp://b//"]
    assert split_urls(["amqp://a//", "amqp://b//;amqp://c//"]) == [
        "amqp://a//",
        "amqp://b//",
        "amqp://c//",
    ]
    assert join_urls(["amqp://a//", "amqp://b//"]) == "amqp://a//;amqp://b//"
    with pytest.raises(TransportError, match="share a transport"):
        split_urls("amqp://a//;redis://b")
    with pytest.raises(TransportError, match="no broker URL"):
        split_urls(" ; ")


def test_round_robin_starts_after_the_node_last_connected_to() -> None:
    f = Failover(["a", "b", "c"])
    assert f.round() == ["a", "b", "c"]
    f.connected("b")
    assert f.round() == ["c", "a", "b"]
    assert f.current == "b"


def test_shuffle_tries_every_node_once_per_round_in_varying_orders() -> None:
    f = Failover(["a", "b", "c", "d"], "shuffle")
    rounds = [tuple(f.round()) for _ in range(50)]
    assert all(sorted(r) == ["a", "b", "c", "d"] for r in rounds)
    assert len(set(rounds)) > 1
    with pytest.raises(TransportError, match="failover_strategy='random'"):
        Failover(["a"], "random")


def test_shuffle_tries_the_node_it_was_on_last_after_the_others() -> None:
    f = Failover(["a", "b", "c", "d"], "shuffle")
    assert {f.round()[-1] for _ in range(50)} != {"a"}  # nothing failed yet: any order
    f.connected("b")
    rounds = [f.round() for _ in range(50)]
    assert all(r[-1] == "b" and sorted(r) == ["a", "b", "c", "d"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1


def test_passwords_of_every_url_of_a_list_are_hidden() -> None:
    shown = redact_url(["amqp://u:pw1@a//", "amqp://u:pw2@b//"])
    assert "pw1" not in shown and "pw2" not in shown
    assert shown == "amqp://u:***@a//;amqp://u:***@b//"
    assert redact_url("amqp://u:pw1@a//;amqp://u:pw2@b//") == shown


def test_a_connection_that_stays_broken_ends_in_broker_unavailable() -> None:
    from celeriac.transports.amqp.connection import with_retries

    def broken() -> None:
        raise ConnectionResetError("reset by peer")

    def reconnect() -> None:
        raise BrokerUnavailable("RabbitMQ at h:5672 is unreachable")

    with pytest.raises(BrokerUnavailable):
        with_retries(broken, reconnect, deadline_s=0.0)
    with pytest.raises(BrokerUnavailable, match="did not come back within 0 s"):
        with_retries(broken, lambda: None, deadline_s=0.0)


# -- options (no broker) ----------------------------------------------------------------------
def test_unknown_options_are_refused_naming_the_closest() -> None:
    with pytest.raises(TransportError, match=r"'heartbeet'.*did you mean 'heartbeat'"):
        AmqpTransport(AMQP_URL, heartbeet=10)
    with pytest.raises(TransportError, match="URL parameter 'frame_max'"):
        AmqpTransport("amqp://127.0.0.1//?frame_max=4096")
    with pytest.raises(TransportError, match="queue_type='stream'"):
        AmqpTransport(AMQP_URL, queue_type="stream")
    with pytest.raises(TransportError, match="heartbeat='often'"):
        AmqpTransport(AMQP_URL, heartbeat="often")
    with pytest.raises(TransportError, match="delivery_limit needs queue_type='quorum'"):
        AmqpTransport(AMQP_URL, delivery_limit=5)


def test_kombu_only_options_are_accepted_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="celeriac.transports.amqp"):
        AmqpTransport(AMQP_URL, confirm_publish=True, interval_max=2)
        AmqpTransport(AMQP_URL, confirm_publish=True)
    said = [r.getMessage() for r in caplog.records]
    assert sum("confirm_publish" in s for s in said) <= 1  # once per process
    assert any("interval_max" in s for s in said)


def test_heartbeat_and_connect_timeout_reach_the_connection_parameters() -> None:
    opts = parse_options({"heartbeat": 7, "connect_timeout": 2.5}, {})
    params = parameters("amqp://h:5672//", opts)
    assert params.heartbeat == 7
    assert params.socket_timeout == 2.5
    from_url = parse_options({"heartbeat": 7}, {"heartbeat": "11", "failover_strategy": "shuffle"})
    assert (from_url.heartbeat, from_url.failover_strategy) == (11, "shuffle")


def test_quorum_queues_have_no_priorities() -> None:
    t = AmqpTransport(AMQP_URL, queue_type="quorum")
    with pytest.raises(TransportError, match="no priorities"):
        t.queue_arguments(QueueSpec("q", max_priority=9))
    assert t.queue_arguments(QueueSpec("q")) == {"x-queue-type": "quorum"}
    limited = AmqpTransport(AMQP_URL, quorum=True, delivery_limit=3)
    assert limited.queue_arguments(QueueSpec("q"))["x-delivery-limit"] == 3


# -- against the real broker ------------------------------------------------------------------
@pytest.fixture
def amqp_url() -> str:
    require("rabbitmq")
    return AMQP_URL


@pytest.fixture
def queue(amqp_url: str) -> Iterator[str]:
    name = f"t20-{uuid.uuid4().hex[:8]}"
    yield name
    t = AmqpTransport(amqp_url)
    ch = t.connection().channel()
    for q in (name, f"{name}.dlq"):
        ch.queue_delete(q)
    t.close()


def test_a_list_whose_first_node_is_down_connects_to_the_next(amqp_url: str) -> None:
    t = open_transport([DEAD, amqp_url])
    try:
        assert t.node == redact_url(amqp_url)  # type: ignore[attr-defined]
    finally:
        t.close()


def test_no_node_up_names_every_node_and_no_password() -> None:
    other = "amqp://guest:s3cret-other@127.0.0.1:5998//"
    with pytest.raises(BrokerUnavailable) as err:
        open_transport(f"{DEAD};{other}", connect_timeout=1)
    text = str(err.value)
    assert "none of the 2 RabbitMQ nodes" in text
    assert "127.0.0.1:5999" in text and "127.0.0.1:5998" in text
    assert "s3cret" not in text


def test_the_broker_heartbeat_is_negotiated(amqp_url: str) -> None:
    t = open_transport(amqp_url, heartbeat=9)
    try:
        assert isinstance(t, AmqpTransport) and t.conn is not None
        assert t.conn._impl.params.heartbeat == 9
    finally:
        t.close()


def test_a_consumer_consumes_again_after_its_queue_is_deleted(
    amqp_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="celeriac.transports.amqp")
    t = open_transport(amqp_url)
    try:
        assert isinstance(t, AmqpTransport)
        t.declare_queue(QueueSpec(queue))
        consumer = t.consumer([queue], prefetch=10)
        t.publish(queue, message(1))
        first = eventually(lambda: consumer.fetch(1, timeout=0.2), what="first delivery")
        consumer.ack(first)
        # The broker cancels our consumer (basic.cancel) when the queue goes away.
        admin = t.connection().channel()
        admin.queue_delete(queue)
        admin.close()

        def consuming_again() -> bool:
            assert consumer.fetch(1, timeout=0.1) == []
            said = [r.getMessage() for r in caplog.records]
            return any("cancelled the consumer" in s for s in said) and any(
                "consuming" in s and "again on" in s for s in said
            )

        eventually(consuming_again, 5, "a cancel noticed and the queue consumed again")
        t.publish(queue, message(2))
        second = eventually(lambda: consumer.fetch(1, timeout=0.2), what="delivery after cancel")
        assert second[0].message is not None and second[0].message.body == message(2).body
        consumer.ack(second)
        consumer.close()
    finally:
        t.close()


def test_quorum_queues_for_task_delay_and_dead_letter_queues(amqp_url: str, queue: str) -> None:
    # (TTL delay queues: with quorum queues, countdowns go through Celery's topology by default)
    t = open_transport(amqp_url, queue_type="quorum", native_delayed_delivery=False)
    try:
        assert isinstance(t, AmqpTransport)
        t.declare_queue(QueueSpec(queue))
        t.publish(queue, message(3), delay=0.2)
        consumer = t.consumer([queue], prefetch=5)
        got = eventually(lambda: consumer.fetch(1, timeout=0.2), what="delayed delivery")
        consumer.reject(got[0], "test")
        consumer.close()
        check = t.connection().channel()
        # Declaring as quorum again succeeds: the task, delay and dead-letter queues are quorum.
        for name in (queue, f"{queue}.dlq", "celeriac.delay.200." + queue):
            check.queue_declare(name, passive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-queue-type"):
            check.queue_declare(f"{queue}.dlq", durable=True)  # classic arguments: refused
        ch = t.connection().channel()
        assert ch.queue_declare(f"{queue}.dlq", passive=True).method.message_count == 1
        ch.queue_delete("celeriac.delay.200." + queue)
        ch.close()
    finally:
        t.close()
