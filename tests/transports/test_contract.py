"""The transport contract (celeriac.transports.base), checked on every transport's real broker.

Every transport that lands is added to ``conftest.TRANSPORTS`` and must pass all of this.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from celeriac.protocol import (
    SAFE_CONTENT_TYPES,
    WireMessage,
    decode_task,
    encode_task,
    new_task_message,
)
from celeriac.transports import (
    REJECT_REASON_HEADER,
    BrokerUnavailable,
    Capabilities,
    Delivery,
    Transport,
    dead_letter_queue,
    resolve,
)
from tests.protocol.vectors import iter_task_vectors, load, read_wire

from .conftest import RESTARTABLE, SHARED, MakeTransport, dumps, inject_raw, new_queue, url_for

REPO = Path(__file__).resolve().parents[2]


def wire(n: int = 0, **options: object) -> WireMessage:
    return encode_task(new_task_message("contract.task", (n,), **options))  # type: ignore[arg-type]


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


def drain(transport: Transport, queue: str, expected: int, timeout: float = 10.0) -> list[Delivery]:
    """Fetch and ack until ``expected`` deliveries arrived (or the deadline passed)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    with transport.consumer([queue], prefetch=max(expected, 1)) as consumer:
        while len(got) < expected and time.monotonic() < deadline:
            batch = consumer.fetch(expected - len(got), timeout=0.5)
            consumer.ack(batch)
            got += batch
    return got


def test_capabilities_are_declared(transport: Transport) -> None:
    caps = type(transport).capabilities
    assert isinstance(caps, Capabilities)
    assert caps.priority_order is None if not caps.priorities else caps.priority_order


def test_every_golden_vector_round_trips(transport: Transport, queue: str) -> None:
    originals = [read_wire(load(p)) for p in iter_task_vectors()]
    assert len(originals) > 100
    transport.publish_many(queue, originals)
    got = drain(transport, queue, len(originals), timeout=30)
    assert len(got) == len(originals)
    received_all = [d.message for d in got]
    assert all(m is not None for m in received_all), [d.error for d in got if d.error]
    # Priorities reorder some vectors, so pair them by content, not by position.
    key = lambda m: (m.body, dumps(dict(m.headers)))  # noqa: E731
    pairs = zip(sorted(originals, key=key), sorted(received_all, key=key), strict=True)  # type: ignore[arg-type]
    for sent, received in pairs:
        assert received is not None
        assert received.body == sent.body
        assert received.content_type == sent.content_type
        assert dict(received.headers) == dict(sent.headers)
        a = decode_task(received, accept=SAFE_CONTENT_TYPES)
        b = decode_task(sent, accept=SAFE_CONTENT_TYPES)
        assert a.properties.correlation_id == b.properties.correlation_id
        assert a.replace(properties=b.properties) == b


def test_publish_many_is_fifo_and_counted(transport: Transport, queue: str) -> None:
    transport.publish_many(queue, [wire(i) for i in range(500)])
    assert transport.queue_length(queue) == 500
    got = drain(transport, queue, 500)
    assert [number(d) for d in got] == list(range(500))
    assert transport.queue_length(queue) == 0


def test_prefetch_is_respected(transport: Transport, queue: str) -> None:
    transport.publish_many(queue, [wire(i) for i in range(10)])
    with transport.consumer([queue], prefetch=3) as consumer:
        first = consumer.fetch(10, timeout=5)
        assert len(first) == 3
        assert consumer.fetch(10, timeout=0.2) == []
        consumer.ack(first[:1])
        more: list[Delivery] = []
        deadline = time.monotonic() + 5
        while not more and time.monotonic() < deadline:
            more = consumer.fetch(10, timeout=0.5)
        assert len(more) == 1
        consumer.ack(first[1:] + more)


def test_ack_removes_for_good(transport: Transport, queue: str) -> None:
    transport.publish(queue, wire(7))
    assert [number(d) for d in drain(transport, queue, 1)] == [7]
    with transport.consumer([queue], prefetch=5) as consumer:
        assert consumer.fetch(5, timeout=1.0) == []
    assert transport.queue_length(queue) == 0


def test_reject_dead_letters_with_the_reason(transport: Transport, queue: str) -> None:
    sent = wire(3)
    transport.publish(queue, sent)
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        consumer.reject(delivery, "invalid-message: headers.eta: not a date")
    assert transport.queue_length(queue) == 0
    (dead,) = drain(transport, dead_letter_queue(queue), 1)
    assert dead.message is not None
    assert dead.message.headers[REJECT_REASON_HEADER] == "invalid-message: headers.eta: not a date"
    assert dead.message.body == sent.body
    assert number(dead) == 3


@pytest.mark.parametrize("name", SHARED)
def test_malformed_envelope_is_dead_lettered_not_dropped(
    name: str, tmp_path: Path, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    queue = new_queue(transport)
    raw = b"\xff not an envelope {"
    inject_raw(name, url_for(name, tmp_path) if name == "sqlite" else transport.url, queue, raw)
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        assert delivery.message is None and delivery.error is not None
        assert delivery.raw is not None and raw in delivery.raw
        consumer.reject(delivery, f"malformed-envelope: {delivery.error}")
    (dead,) = drain(transport, dead_letter_queue(queue), 1)
    assert dead.message is not None
    assert dead.message.headers[REJECT_REASON_HEADER].startswith("malformed-envelope")
    assert raw in dead.message.body


def test_requeue_redelivers(transport: Transport, queue: str) -> None:
    transport.publish(queue, wire(5))
    with transport.consumer([queue], prefetch=1) as consumer:
        (first,) = consumer.fetch(1, timeout=5)
        assert not first.redelivered
        consumer.requeue(first)
        again: list[Delivery] = []
        deadline = time.monotonic() + 5
        while not again and time.monotonic() < deadline:
            again = consumer.fetch(1, timeout=0.5)
        assert len(again) == 1 and number(again[0]) == 5
        assert again[0].redelivered
        consumer.ack(again)


def test_close_returns_unsettled_deliveries(transport: Transport, queue: str) -> None:
    transport.publish_many(queue, [wire(i) for i in range(3)])
    consumer = transport.consumer([queue], prefetch=3)
    held = consumer.fetch(3, timeout=5)
    assert len(held) == 3
    consumer.close()
    assert sorted(number(d) for d in drain(transport, queue, 3)) == [0, 1, 2]


@pytest.mark.parametrize("name", SHARED)
def test_sigkilled_consumer_loses_nothing(name: str, make_transport: MakeTransport) -> None:
    transport = make_transport()
    queue = new_queue(transport)
    transport.publish_many(queue, [wire(i) for i in range(20)])
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("consumer_proc.py")), transport.url, queue,
         "20"],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        line = _read_line(proc, timeout=30)
        assert line == "HOLDING 20", line
        assert transport.queue_length(queue) == 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    got = drain(transport, queue, 20, timeout=30)
    assert sorted(number(d) for d in got) == list(range(20))


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else f"<no line in {timeout}s>"


def test_live_consumer_keeps_its_deliveries(make_transport: MakeTransport) -> None:
    holder_side = make_transport(visibility_timeout=1)
    other_side = make_transport(visibility_timeout=1)
    queue = new_queue(holder_side)
    holder_side.publish(queue, wire(1))
    with (
        holder_side.consumer([queue], prefetch=1) as holder,
        other_side.consumer([queue], prefetch=1) as other,
    ):
        (held,) = holder.fetch(1, timeout=5)
        until = time.monotonic() + 3.5  # several visibility timeouts
        while time.monotonic() < until:
            assert holder.fetch(1, timeout=0.2) == []  # renews the hold, has no room
            assert other.fetch(1, timeout=0.2) == []
        holder.ack([held])


def test_priorities_are_ordered(transport: Transport) -> None:
    caps = type(transport).capabilities
    if not caps.priorities:
        assert caps.priority_order is None
        return
    queue = new_queue(transport, max_priority=9)
    order = [6, 0, 9, 3, 9, 0, 3, 6]
    transport.publish_many(queue, [wire(p, priority=p) for p in order])
    got = [number(d) for d in drain(transport, queue, len(order))]
    assert got == sorted(order, reverse=caps.priority_order == "higher-first")


def test_delayed_delivery_not_early_and_not_late(transport: Transport, queue: str) -> None:
    start = time.monotonic()
    transport.publish(queue, wire(2), delay=2.0)
    transport.publish(queue, wire(1), delay=1.0)
    assert transport.queue_length(queue) == 0
    arrivals: dict[int, float] = {}
    with transport.consumer([queue], prefetch=2) as consumer:
        deadline = start + 6
        while len(arrivals) < 2 and time.monotonic() < deadline:
            for delivery in consumer.fetch(2, timeout=0.1):
                arrivals[number(delivery)] = time.monotonic() - start
                consumer.ack([delivery])
    assert set(arrivals) == {1, 2}, arrivals
    assert 1.0 <= arrivals[1] <= 2.0, arrivals
    assert 2.0 <= arrivals[2] <= 3.0, arrivals


def test_purge_and_length_are_exact(transport: Transport, queue: str) -> None:
    transport.publish_many(queue, [wire(i) for i in range(7)])
    transport.publish(queue, wire(99), delay=60)
    assert transport.queue_length(queue) == 7
    assert transport.purge(queue) == 7
    assert transport.queue_length(queue) == 0
    assert transport.purge(queue) == 0


def test_broadcast_reaches_every_subscriber(make_transport: MakeTransport) -> None:
    exchange = f"contract.bcast.{time.monotonic_ns()}"
    sender = make_transport()
    subscriptions = [make_transport().subscribe(exchange) for _ in range(3)]
    message = wire(42)
    sender.broadcast(exchange, message)
    for subscription in subscriptions:
        got = None
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            got = subscription.get(timeout=0.5)
        assert got is not None and got.body == message.body
        subscription.close()


if RESTARTABLE:  # defined once a transport with a restartable broker has landed

    @pytest.mark.parametrize("name", sorted(RESTARTABLE))
    def test_consumer_survives_broker_restart(name: str, make_transport: MakeTransport) -> None:
        transport = make_transport(visibility_timeout=2)
        queue = new_queue(transport)
        transport.publish(queue, wire(11))
        consumer = transport.consumer([queue], prefetch=1)
        (held,) = consumer.fetch(1, timeout=5)
        service = RESTARTABLE[name]
        subprocess.run([str(REPO / "scripts/services"), "down", service], check=True, cwd=REPO,
                       capture_output=True)  # fmt: skip
        subprocess.run([str(REPO / "scripts/services"), "up", service], check=True, cwd=REPO,
                       capture_output=True)  # fmt: skip
        # Settling a delivery from before the restart must not raise: either the ack lands, or the
        # broker already gave the message back and it is delivered again (at-least-once).
        consumer.ack([held])
        seen = [11]
        deadline = time.monotonic() + 30
        transport.publish(queue, wire(12))
        while 12 not in seen and time.monotonic() < deadline:
            batch = consumer.fetch(1, timeout=0.5)
            seen += [number(d) for d in batch]
            consumer.ack(batch)
        consumer.close()
        assert 12 in seen
        assert transport.queue_length(queue) == 0


@pytest.mark.parametrize("name", SHARED)
def test_unreachable_broker_names_host_and_hides_password(name: str, tmp_path: Path) -> None:
    bad = {
        "redis": "redis://:s3cret@127.0.0.1:1/0",
        "rediscluster": "redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2/",
        "amqp": "amqp://guest:s3cret@127.0.0.1:1//",
        "sqlite": f"sqlite:///{tmp_path}/no/such/dir/broker.db",
        "sqs": "sqs://x:s3cret@127.0.0.1:1",
        "kafka": "kafka://127.0.0.1:1",
        "zookeeper": "zookeeper://127.0.0.1:1/celeriac",
    }[name]
    with pytest.raises(BrokerUnavailable) as info:
        resolve(bad)(bad).connect()
    text = str(info.value)
    assert "s3cret" not in text
    assert ("127.0.0.1:1" in text) if name != "sqlite" else ("no/such/dir" in text)
