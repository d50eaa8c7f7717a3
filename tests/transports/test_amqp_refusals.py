"""RabbitMQ refusals: a delay longer than a TTL delay queue can hold goes in hops, and a channel
the broker closes comes back as a TransportError with the transport still working (issue 17:
an ETA ten years ahead once killed every worker on a classic queue)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from celeriac.protocol import encode_task, new_task_message
from celeriac.protocol.wire import BROKER_DELAYED_HEADER, mark_broker_delayed
from celeriac.transports import QueueSpec, TransportError, open_transport
from celeriac.transports.amqp.transport import MAX_HOP_S, AmqpTransport, delay_bucket, delay_queue
from tests.brokers import AMQP_URL, require

pytestmark = pytest.mark.broker


@pytest.fixture
def transport() -> Iterator[AmqpTransport]:
    require("rabbitmq")
    t = open_transport(AMQP_URL)
    assert isinstance(t, AmqpTransport) and not t.opts.native_delay
    yield t
    t.close()


def test_a_delay_past_a_delay_queue_s_limit_is_held_in_hops(transport: AmqpTransport) -> None:
    queue = f"refusals.{uuid.uuid4().hex[:10]}"
    transport.declare_queue(QueueSpec(queue))
    wire = mark_broker_delayed(encode_task(new_task_message("refusals.task", ())))
    ten_years = 10 * 365 * 86_400.0
    transport.publish(queue, wire, delay=ten_years)  # refused by RabbitMQ before (x-expires)
    hop = delay_queue(queue, delay_bucket(MAX_HOP_S))
    try:
        assert transport.queue_length(hop) == 1
        assert transport.queue_length(queue) == 0
        with transport.consumer([hop], prefetch=1) as consumer:
            (held,) = consumer.fetch(1, timeout=5)
            assert held.message is not None
            # Not "due by the broker's clock": the worker reads the eta and parks it again.
            assert BROKER_DELAYED_HEADER not in held.message.headers
            assert held.message.body == wire.body
            consumer.ack([held])
    finally:
        transport.purge(hop)


def test_a_refusal_is_a_transport_error_and_the_transport_goes_on(
    transport: AmqpTransport,
) -> None:
    missing = f"refusals.missing.{uuid.uuid4().hex[:10]}"
    with pytest.raises(TransportError, match="404"):
        transport.queue_length(missing)  # a passive declare: RabbitMQ closes the channel
    queue = f"refusals.{uuid.uuid4().hex[:10]}"
    transport.declare_queue(QueueSpec(queue))
    transport.publish(queue, encode_task(new_task_message("refusals.task", ())))
    assert transport.queue_length(queue) == 1
    transport.purge(queue)


def test_a_message_no_queue_takes_is_a_transport_error(transport: AmqpTransport) -> None:
    missing = f"refusals.missing.{uuid.uuid4().hex[:10]}"
    with pytest.raises(TransportError, match="no queue is bound"):
        transport.publish(missing, encode_task(new_task_message("refusals.task", ())))
