"""What the memory transport does beyond the shared contract: shared state per URL, threads,
envelope bytes, holds returned on close, collection or lapse, SQLite's ordering."""

from __future__ import annotations

import gc
import threading
import time
import uuid

import pytest

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.transports import Delivery, QueueSpec, TransportError, open_transport
from celeriac.transports.memory import MemoryTransport
from tests.waiting import eventually


def wire(n: int, **options: object) -> WireMessage:
    return encode_task(new_task_message("memory.task", (n,), **options))  # type: ignore[arg-type]


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


def fresh(**options: object) -> tuple[MemoryTransport, str]:
    """A transport on a broker of its own, with one declared queue."""
    transport = open_transport(f"memory://test-{uuid.uuid4().hex[:8]}", **options)
    assert isinstance(transport, MemoryTransport)
    transport.declare_queue(QueueSpec("q"))
    return transport, "q"


def fetch_until(consumer: object, count: int, timeout: float = 5.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.fetch(count - len(got), timeout=0.2)  # type: ignore[attr-defined]
    return got


def test_same_url_shares_queues_and_other_names_do_not() -> None:
    name = f"share-{uuid.uuid4().hex[:8]}"
    a = open_transport(f"memory://{name}")
    b = open_transport(f"memory://{name}/")  # the same broker, however the URL ends
    other = open_transport(f"memory://{name}-other")
    a.declare_queue(QueueSpec("q"))
    other.declare_queue(QueueSpec("q"))
    a.publish("q", wire(1))
    assert b.queue_length("q") == 1
    assert other.queue_length("q") == 0
    unnamed, also_unnamed = open_transport("memory://"), open_transport("memory:///")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    unnamed.declare_queue(QueueSpec(queue))
    unnamed.publish(queue, wire(2))
    assert also_unnamed.queue_length(queue) == 1


def test_messages_are_kept_as_json_envelope_bytes() -> None:
    transport, queue = fresh()
    transport.publish(queue, wire(5, priority=4))
    ((_, stored),) = transport.broker.queues[queue]
    assert isinstance(stored.envelope, bytes)
    received, info = json_envelope.unpack_wire(stored.envelope)
    assert info.routing_key == queue and info.delivery_tag
    uuid.UUID(info.delivery_tag)  # a fresh UUID per publish (SPEC.md §6.1)
    assert received.properties["priority"] == 4


def test_publishing_to_an_undeclared_queue_says_what_to_do() -> None:
    transport, _ = fresh()
    with pytest.raises(TransportError, match="'nowhere' was not declared; call declare_queue"):
        transport.publish("nowhere", wire(1))
    with pytest.raises(TransportError, match="not declared"):
        transport.consumer(["nowhere"])


def test_threads_publishing_and_consuming_deliver_each_message_once() -> None:
    transport, queue = fresh()
    producers, per_producer, consumers = 4, 500, 3
    seen: list[int] = []
    seen_lock = threading.Lock()
    done = threading.Event()

    def produce(base: int) -> None:
        for i in range(per_producer):
            transport.publish(queue, wire(base + i))

    def consume() -> None:
        with transport.consumer([queue], prefetch=20) as consumer:
            while not done.is_set():
                batch = consumer.fetch(10, timeout=0.1)
                consumer.ack(batch)
                with seen_lock:
                    seen.extend(number(d) for d in batch)

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    threads += [threading.Thread(target=produce, args=(p * 10_000,)) for p in range(producers)]
    for t in threads:
        t.start()

    def all_seen() -> bool:
        with seen_lock:
            return len(seen) >= producers * per_producer

    try:
        eventually(all_seen, 20, "every message consumed", interval=0.01)
    except AssertionError:
        pass  # the counts below say what is missing
    done.set()
    for t in threads:
        t.join(5)
    expected = [p * 10_000 + i for p in range(producers) for i in range(per_producer)]
    assert sorted(seen) == expected


def test_a_waiting_fetch_wakes_on_publish_from_another_thread() -> None:
    transport, queue = fresh()
    publisher = threading.Timer(0.2, lambda: transport.publish(queue, wire(9)))
    with transport.consumer([queue], prefetch=1) as consumer:
        start = time.monotonic()
        publisher.start()
        got = consumer.fetch(1, timeout=10)
        waited = time.monotonic() - start
    assert [number(d) for d in got] == [9]
    assert waited < 2.0  # woken by the publish, not by the end of the timeout


def test_a_garbage_collected_consumer_gives_its_deliveries_back() -> None:
    transport, queue = fresh()
    transport.publish_many(queue, [wire(i) for i in range(3)])
    consumer = transport.consumer([queue], prefetch=3)
    assert len(consumer.fetch(3, timeout=1)) == 3
    assert transport.queue_length(queue) == 0
    del consumer
    gc.collect()
    assert transport.queue_length(queue) == 3
    with transport.consumer([queue], prefetch=3) as again:
        got = fetch_until(again, 3)
        assert sorted(number(d) for d in got) == [0, 1, 2]
        assert all(d.redelivered for d in got)


def test_a_consumer_collected_while_the_broker_is_busy_is_settled_by_the_next_fetch() -> None:
    transport, queue = fresh()
    transport.publish(queue, wire(1))
    consumer = transport.consumer([queue], prefetch=1)
    assert len(consumer.fetch(1, timeout=1)) == 1
    with transport.broker.lock:  # as when the collector runs on a thread inside the broker
        del consumer
        gc.collect()
    assert transport.queue_length(queue) == 1  # housekeeping returned it


def test_visibility_timeout_returns_a_silent_consumers_deliveries() -> None:
    transport, queue = fresh(visibility_timeout=0.5)
    transport.publish_many(queue, [wire(1), wire(2)])
    silent = transport.consumer([queue], prefetch=2)
    held = silent.fetch(2, timeout=1)
    assert len(held) == 2
    with transport.consumer([queue], prefetch=2) as other:
        start = time.monotonic()
        assert other.fetch(2, timeout=0.2) == []  # not before the timeout
        got = other.fetch(2, timeout=5)  # woken when the hold lapses
        waited = time.monotonic() - start
        assert sorted(number(d) for d in got) == [1, 2]
        assert all(d.redelivered for d in got)
        assert 0.4 <= waited < 2.0
        silent.ack(held)  # too late: a no-op, the other consumer holds them now
        other.ack(got)
    assert transport.queue_length(queue) == 0
    assert silent.fetch(2, timeout=0) == []  # its room is back
    silent.close()


def test_priorities_are_clamped_and_requeued_messages_keep_their_place() -> None:
    transport, queue = fresh()
    sent = [(1, 0), (2, 42), (3, 0), (4, 9), (5, 255)]  # (number, priority)
    transport.publish_many(queue, [wire(n, priority=p) for n, p in sent])
    with transport.consumer([queue], prefetch=5) as consumer:
        first = consumer.fetch(1, timeout=1)
        assert [number(d) for d in first] == [2]  # 42 counts as 9, first among the nines
        consumer.requeue(first[0])
        got = fetch_until(consumer, 5)
        assert [number(d) for d in got] == [2, 4, 5, 1, 3]  # all above 9 count as 9
        assert [d.redelivered for d in got] == [True, False, False, False, False]
        consumer.ack(got)


def test_a_delayed_message_queues_by_the_time_it_became_ready() -> None:
    transport, queue = fresh()
    transport.publish(queue, wire(1), delay=0.3)
    transport.publish(queue, wire(2))
    eventually(lambda: transport.queue_length(queue) >= 2, 5, "both messages ready")
    transport.publish(queue, wire(3))
    with transport.consumer([queue], prefetch=3) as consumer:
        got = fetch_until(consumer, 3)
        assert [number(d) for d in got] == [2, 1, 3]
        consumer.ack(got)


def test_broadcast_carries_envelopes_and_a_dropped_subscription_stops_receiving() -> None:
    transport, _ = fresh()
    kept = transport.subscribe("ex")
    dropped = transport.subscribe("ex")
    del dropped
    gc.collect()
    assert len(transport.broker.subscribers["ex"]) == 1
    transport.broadcast("ex", wire(7, priority=3))
    got = kept.get(timeout=1)
    assert got is not None and decode_task(got).args == (7,)
    assert kept.get(timeout=0) is None
    kept.close()
    assert len(transport.broker.subscribers["ex"]) == 0


def test_a_closed_consumer_refuses_to_fetch() -> None:
    transport, queue = fresh()
    consumer = transport.consumer([queue])
    consumer.close()
    consumer.close()  # twice is fine
    with pytest.raises(TransportError, match="after close"):
        consumer.fetch(1, timeout=0)
