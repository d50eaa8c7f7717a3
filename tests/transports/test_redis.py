"""Redis-specific behaviour (SPEC.md §6.3): Kombu's keys and records, liveness, restores by
either side, Celery 5.7 interop both ways, options and errors.

Tests that could disturb other users of the shared server (restores with short timeouts) run
under a ``global_keyprefix`` of their own, which Kombu honours too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.transports import (
    REJECT_REASON_HEADER,
    BrokerUnavailable,
    Delivery,
    QueueSpec,
    TransportError,
    resolve,
)
from celeriac.transports.redis import RedisTransport
from interop import celery_env
from tests.brokers import REDIS_URL, require, unique
from tests.waiting import eventually

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
CONSUMER_PROC = Path(__file__).with_name("consumer_proc.py")
APP_DIR = REPO / "interop" / "capture"
SEP = "\x06\x16"


def wire(n: int, **options: Any) -> WireMessage:
    return encode_task(new_task_message("redis.task", (n,), **options))


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


@pytest.fixture
def prefix() -> str:
    return f"celeriac-test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    require("redis")
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def make(prefix: str, raw: redis.Redis) -> Iterator[Any]:
    """Transports on the test server under the test's own key prefix (removed afterwards)."""
    opened: list[RedisTransport] = []

    def build(**options: Any) -> RedisTransport:
        transport = RedisTransport(REDIS_URL, global_keyprefix=prefix, **options)
        transport.connect()
        opened.append(transport)
        return transport

    yield build
    for transport in opened:
        transport.close()
    keys = list(raw.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        raw.delete(*keys)


def drain(transport: RedisTransport, queue: str, count: int, timeout: float = 15) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    with transport.consumer([queue], prefetch=max(count, 1)) as consumer:
        while len(got) < count and time.monotonic() < deadline:
            batch = consumer.fetch(count - len(got), timeout=0.2)
            consumer.ack(batch)
            got += batch
    return got


# -- Kombu's layout -------------------------------------------------------------------------------
def test_lists_and_priority_sub_lists_are_kombus(make: Any, prefix: str, raw: redis.Redis) -> None:
    transport = make()
    queue = unique("layout")
    transport.declare_queue(QueueSpec(queue))
    transport.publish_many(queue, [wire(p, priority=p) for p in (0, 2, 3, 5, 6, 9)])
    p = prefix + queue
    assert raw.llen(p) == 2 and raw.llen(f"{p}{SEP}3") == 2
    assert raw.llen(f"{p}{SEP}6") == 1 and raw.llen(f"{p}{SEP}9") == 1
    envelope = json.loads(raw.lindex(p, -1) or b"")  # the oldest, next to be popped
    assert list(envelope) == ["body", "content-encoding", "content-type", "headers", "properties"]
    assert envelope["properties"]["delivery_info"] == {"exchange": "", "routing_key": queue}
    # Celery's declaration of the queue: its direct exchange binding.
    member = f"{queue}{SEP}{SEP}{queue}".encode()
    assert raw.sismember(f"{prefix}_kombu.binding.{queue}", member)
    assert [number(d) for d in drain(transport, queue, 6)] == [0, 2, 3, 5, 6, 9]


def test_a_delivery_is_recorded_as_kombu_records_it(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("record")
    transport.publish(queue, wire(1))
    sent = raw.lindex(prefix + queue, 0)
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        record = raw.hget(f"{prefix}unacked", delivery.tag)
        assert record is not None
        assert json.loads(record) == [json.loads(sent or b""), "", queue]
        assert raw.zscore(f"{prefix}unacked_index", delivery.tag) is not None
        held = raw.hgetall(f"{prefix}celeriac.held.{consumer.id}")
        assert held == {delivery.tag.encode(): (prefix + queue).encode()}
        assert raw.zscore(f"{prefix}celeriac.consumers", consumer.id) is not None
        consumer.ack([delivery])
        assert raw.hget(f"{prefix}unacked", delivery.tag) is None
        assert raw.zscore(f"{prefix}unacked_index", delivery.tag) is None
        assert raw.hlen(f"{prefix}celeriac.held.{consumer.id}") == 0


def test_reject_pushes_to_the_dlq_list_with_the_reason(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("reject")
    transport.publish(queue, wire(4))
    with transport.consumer([queue], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        consumer.reject(delivery, "unknown-task: redis.task")
    (dead,) = raw.lrange(f"{prefix}{queue}.dlq", 0, -1)
    message, _ = json_envelope.unpack_wire(dead)
    assert message.headers[REJECT_REASON_HEADER] == "unknown-task: redis.task"
    assert decode_task(message).args == (4,)
    assert raw.hget(f"{prefix}unacked", delivery.tag) is None


def test_delayed_messages_wait_in_a_sorted_set_then_join_their_priority_list(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("delayed")
    transport.publish(queue, wire(6, priority=6), delay=0.5)
    transport.publish(queue, wire(0), delay=0.5)
    assert raw.zcard(f"{prefix}celeriac.delayed.{queue}") == 2
    assert transport.queue_length(queue) == 0
    got = drain(transport, queue, 2, timeout=5)
    assert [number(d) for d in got] == [0, 6]  # moved to its own step's list: 0 before 6
    assert raw.zcard(f"{prefix}celeriac.delayed.{queue}") == 0


def test_no_queue_of_a_consumer_is_preferred(make: Any) -> None:
    transport = make()
    first, second = unique("fair-a"), unique("fair-b")
    transport.publish_many(first, [wire(1)] * 10)
    transport.publish_many(second, [wire(2)] * 10)
    with transport.consumer([first, second], prefetch=100) as consumer:
        seen = [consumer.fetch(1, timeout=5)[0].queue for _ in range(6)]
    assert seen.count(first) == 3 and seen.count(second) == 3


def test_fetches_of_large_envelopes_are_bounded_by_bytes(make: Any) -> None:
    """Past a few MiB a fetch script costs Redis more per MiB: after a fetch of large
    envelopes the next takes about 4 MiB of them, and small ones bring full batches back."""
    transport = make()
    queue = unique("large")
    big = encode_task(new_task_message("redis.task", ("x" * (1 << 20),)))
    transport.publish_many(queue, [big] * 12)
    with transport.consumer([queue], prefetch=100) as consumer:
        first = consumer.fetch(2, timeout=5)
        assert len(first) == 2
        consumer.ack(first)
        second = consumer.fetch(10, timeout=5)
        assert 1 <= len(second) <= 4  # envelopes of ~1.4 MB (base64), 4 MiB a fetch
        consumer.ack(second)
        rest = drain_consumer(consumer, 12 - len(first) - len(second))
        assert len(rest) == 12 - len(first) - len(second)
        transport.publish_many(queue, [wire(n) for n in range(20)])
        small = drain_consumer(consumer, 20)
        assert sorted(number(d) for d in small) == list(range(20))
        transport.publish_many(queue, [wire(n) for n in range(20)])
        assert len(consumer.fetch(20, timeout=5)) == 20


def drain_consumer(consumer: Any, count: int, timeout: float = 15) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = consumer.fetch(count - len(got), timeout=0.2)
        consumer.ack(batch)
        got += batch
    return got


# -- liveness and restores ------------------------------------------------------------------------
def _kill_holding_consumer(url: str, queue: str, count: int) -> None:
    """Run consumer_proc.py (visibility_timeout=2) until it holds ``count``, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, str(CONSUMER_PROC), url, queue, str(count)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"HOLDING {count}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def _prefixed_url(prefix: str) -> str:
    return f"{REDIS_URL}?global_keyprefix={prefix}"


def test_a_killed_consumers_holds_come_back_redelivered(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("killed")
    transport.publish_many(queue, [wire(i) for i in range(5)])
    _kill_holding_consumer(_prefixed_url(prefix), queue, 5)
    assert transport.queue_length(queue) == 0
    assert raw.hlen(f"{prefix}unacked") == 5
    started = time.monotonic()
    got = drain(transport, queue, 5)
    assert sorted(number(d) for d in got) == list(range(5))
    assert all(d.redelivered for d in got)
    assert time.monotonic() - started < 4  # the dead one's visibility_timeout was 2 s
    assert raw.hlen(f"{prefix}unacked") == 0
    assert raw.zcard(f"{prefix}celeriac.consumers") == 0  # the dead consumer is forgotten


def _same_tag(raw: redis.Redis, prefix: str, queue: str, count: int) -> None:
    """Push ``count`` messages that all carry one ``delivery_tag``, as a careless client may."""
    for n in range(count):
        raw.lpush(prefix + queue, json_envelope.pack_wire(wire(n), routing_key=queue,
                                                          delivery_tag="same"))  # fmt: skip


def test_a_repeated_delivery_tag_gets_tags_of_the_brokers_own(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("same-tag")
    transport.declare_queue(QueueSpec(queue))
    _same_tag(raw, prefix, queue, 4)
    with transport.consumer([queue], prefetch=10) as consumer:
        got: list[Delivery] = []
        deadline = time.monotonic() + 10
        while len(got) < 4 and time.monotonic() < deadline:
            got += consumer.fetch(4 - len(got), timeout=0.5)
        assert len({d.tag for d in got}) == 4
        assert raw.hlen(f"{prefix}unacked") == 4  # each one's record is kept
        consumer.reject(got[0], "a reason")
        consumer.ack(got[1:])
    assert raw.hlen(f"{prefix}unacked") == 0
    assert [number(d) for d in drain(transport, f"{queue}.dlq", 1)] == [number(got[0])]


def test_a_repeated_delivery_tag_loses_nothing_under_sigkill(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("same-tag-killed")
    transport.declare_queue(QueueSpec(queue))
    _same_tag(raw, prefix, queue, 5)
    _kill_holding_consumer(_prefixed_url(prefix), queue, 5)
    got = drain(transport, queue, 5)
    assert sorted(number(d) for d in got) == list(range(5))
    # Each came back once, counted: the worker reads the count to stop a poison message.
    assert all(d.message and d.message.headers.get("x-delivery-count") == 1 for d in got)


def test_a_live_consumers_holds_outlive_kombus_timeout(make: Any, raw: redis.Redis) -> None:
    """Holds are re-scored while their consumer lives, so neither Kombu's rule (here a 1 s
    Kombu visibility timeout) nor the liveness rule gives them to anyone else."""
    holder_side = make(visibility_timeout=1)
    other_side = make(visibility_timeout=1, kombu_visibility_timeout=1)
    queue = unique("live")
    holder_side.publish(queue, wire(1))
    with holder_side.consumer([queue], prefetch=1) as holder:
        (held,) = holder.fetch(1, timeout=5)
        with other_side.consumer([queue], prefetch=1) as other:
            until = time.monotonic() + 3
            while time.monotonic() < until:
                assert holder.fetch(1, timeout=0.1) == []
                assert other.fetch(1, timeout=0.1) == []
        holder.ack([held])


def test_strays_of_a_lost_fetch_reply_are_given_back(make: Any) -> None:
    """A fetch whose reply never arrived (connection cut) left holds in this consumer's name;
    the next fetch notices the held hash is larger than what it knows and gives them back."""
    transport = make()
    queue = unique("strays")
    transport.publish_many(queue, [wire(1), wire(2)])
    with transport.consumer([queue], prefetch=10) as consumer:
        order = consumer._orders[0]
        lost = transport.fetch_script(
            keys=order.keys, args=[1, consumer.id, 60, 3600, 1, 0, 3, 6, 9]
        )
        assert len(lost) == 5  # one delivery popped and recorded, its reply thrown away
        got = consumer.fetch(10, timeout=2)  # the other one; the stray goes back meanwhile
        got += eventually(lambda: consumer.fetch(10, timeout=0.2), what="the stray's return")
        assert sorted(number(d) for d in got) == [1, 2]
        assert any(d.redelivered for d in got)
        consumer.ack(got)


def test_unreadable_entries_are_kept_until_dead_lettered(
    make: Any, prefix: str, raw: redis.Redis
) -> None:
    transport = make()
    queue = unique("unreadable")
    raw.lpush(prefix + queue, b"\xff{not json")
    # Looks like an envelope to the fetch script (its properties parse), but is not JSON.
    raw.lpush(prefix + queue, b'{"body": x, "properties": {"delivery_tag": "t-1"}}')
    _kill_holding_consumer(_prefixed_url(prefix), queue, 2)
    assert raw.hlen(f"{prefix}unacked") == 0  # Kombu's restore could not read either one
    with transport.consumer([queue], prefetch=2) as consumer:
        got = eventually(lambda: consumer.fetch(2, timeout=0.2), what="the raw entries' return")
        if len(got) < 2:
            got += eventually(lambda: consumer.fetch(2, timeout=0.2), what="the second one")
        assert all(d.message is None and d.error is not None for d in got)
        for d in got:
            consumer.reject(d, f"malformed-envelope: {d.error}")
    assert raw.llen(f"{prefix}{queue}.dlq") == 2
    assert raw.hlen(f"{prefix}celeriac.unacked.raw") == 0


# -- Kombu on the other side ----------------------------------------------------------------------
KOMBU_PEER = textwrap.dedent(
    """
    import json, os, sys
    from kombu import Connection, Exchange, Producer, Queue

    command, url, prefix = sys.argv[1:4]
    options = {"global_keyprefix": prefix, "visibility_timeout": 1}
    with Connection(url, transport_options=options) as conn:
        channel = conn.default_channel
        if command == "hold":  # take one message, record it unacked, and die without a word
            queue = sys.argv[4]
            message = Queue(queue, Exchange(queue), routing_key=queue)(channel).get(no_ack=False)
            print(json.dumps({"tag": message.delivery_tag, "body": message.body.decode()}))
            sys.stdout.flush()
            os._exit(0)
        elif command == "restore":  # Kombu's visibility-timeout restore, once
            channel.qos.restore_visible(num=1000)
        elif command == "fanout":
            exchange = Exchange(sys.argv[4], "fanout", durable=False)
            Producer(channel).publish({"hello": "fanout"}, exchange=exchange, declare=[exchange])
    """
)


@pytest.fixture
def kombu(tmp_path: Path) -> Any:
    celery_env.ensure(quiet=True)
    script = tmp_path / "kombu_peer.py"
    script.write_text(KOMBU_PEER)

    def run(*args: str) -> str:
        return str(celery_env.run_script(script, *args, timeout=120).stdout)

    return run


@pytest.mark.celery
def test_kombu_restores_what_our_killed_consumer_held(
    make: Any, prefix: str, raw: redis.Redis, kombu: Any
) -> None:
    transport = make()
    queue = unique("kombu-restores")
    transport.publish_many(queue, [wire(i) for i in range(3)])
    _kill_holding_consumer(_prefixed_url(prefix), queue, 3)
    eventually(
        lambda: (
            max(s for _, s in raw.zrange(f"{prefix}unacked_index", 0, -1, withscores=True))
            < time.time() - 1.5
        ),
        what="holds older than Kombu's 1 s visibility timeout",
    )
    kombu("restore", REDIS_URL, prefix)
    assert transport.queue_length(queue) == 3  # Kombu put them back, flagged redelivered
    assert raw.hlen(f"{prefix}unacked") == 0
    got = drain(transport, queue, 3)
    assert sorted(number(d) for d in got) == [0, 1, 2] and all(d.redelivered for d in got)
    with transport.consumer([queue], prefetch=5) as consumer:  # nothing comes back twice
        assert consumer.fetch(5, timeout=1.5) == []


@pytest.mark.celery
def test_we_restore_what_a_killed_kombu_consumer_held(
    make: Any, prefix: str, raw: redis.Redis, kombu: Any
) -> None:
    transport = make(kombu_visibility_timeout=1)
    queue = unique("we-restore")
    transport.publish(queue, wire(9))
    held = json.loads(kombu("hold", REDIS_URL, prefix, queue))
    record = json.loads(raw.hget(f"{prefix}unacked", held["tag"]) or b"null")
    assert record[1:] == ["", queue]  # Kombu's own record: [envelope, exchange, routing_key]
    assert transport.queue_length(queue) == 0
    with transport.consumer([queue], prefetch=1) as consumer:
        got = eventually(lambda: consumer.fetch(1, timeout=0.2), what="Kombu's hold restored")
        assert number(got[0]) == 9 and got[0].redelivered
        consumer.ack(got)
    assert raw.hlen(f"{prefix}unacked") == 0 and raw.zcard(f"{prefix}unacked_index") == 0


@pytest.mark.celery
def test_kombu_fanout_reaches_our_subscription_and_back(
    make: Any, prefix: str, raw: redis.Redis, kombu: Any
) -> None:
    transport = make()
    exchange = unique("fanout")
    with transport.subscribe(exchange) as subscription:
        kombu("fanout", REDIS_URL, prefix, exchange)
        got = subscription.get(timeout=5)
        assert got is not None and json.loads(got.body) == {"hello": "fanout"}
    listener = raw.pubsub()
    listener.psubscribe(f"{prefix}/0.{exchange}")  # what a Kombu fanout consumer subscribes to
    eventually(lambda: listener.get_message(timeout=0.1), what="psubscribe confirmed")
    transport.broadcast(exchange, wire(3))
    message = eventually(lambda: listener.get_message(timeout=0.2), what="our broadcast")
    wire_got, info = json_envelope.unpack_wire(message["data"])
    assert decode_task(wire_got).args == (3,) and info.exchange == exchange
    listener.close()


# -- real Celery 5.7, both directions -------------------------------------------------------------
CELERY_SEND = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from interop_app import make_app
    app = make_app(sys.argv[1])
    print(app.send_task("interop.add", args=(7, 8), queue=sys.argv[2]).id)
    """
)


def _backend_url() -> str:
    return urlunsplit(urlsplit(REDIS_URL)._replace(path="/1"))


@pytest.mark.celery
def test_celery_client_to_our_consumer(tmp_path: Path, raw: redis.Redis) -> None:
    script = tmp_path / "send.py"
    script.write_text(CELERY_SEND)
    queue = unique("celery-to-us")
    transport = resolve(REDIS_URL)(REDIS_URL)
    transport.connect()
    try:
        transport.declare_queue(QueueSpec(queue))
        proc = celery_env.run_script(script, REDIS_URL, queue, str(APP_DIR), timeout=120)
        task_id = proc.stdout.strip().splitlines()[-1]
        with transport.consumer([queue], prefetch=1) as consumer:
            (delivery,) = eventually(lambda: consumer.fetch(1, timeout=0.2), what="Celery's task")
            message = decode_task(delivery.message)
            consumer.ack([delivery])
        assert (message.task, message.id, message.args) == ("interop.add", task_id, (7, 8))
    finally:
        transport.close()


@pytest.mark.celery
def test_our_message_runs_on_a_celery_worker(raw: redis.Redis) -> None:
    celery_env.ensure(quiet=True)
    queue = unique("us-to-celery")
    message = new_task_message("interop.add", (2, 3))
    transport = resolve(REDIS_URL)(REDIS_URL)
    transport.connect()
    backend = redis.Redis.from_url(_backend_url())
    try:
        transport.declare_queue(QueueSpec(queue))
        transport.publish(queue, encode_task(message))
        with celery_env.CeleryWorker(
            APP_DIR, "interop_app", broker_url=REDIS_URL, backend_url=_backend_url(),
            queues=[queue],
        ) as worker:  # fmt: skip
            stored = eventually(
                lambda: backend.get(f"celery-task-meta-{message.id}"),
                timeout=30,
                what=f"Celery's result (worker log: {worker.log()[-2000:]})",
            )
        record = json.loads(stored)
        assert (record["status"], record["result"]) == ("SUCCESS", 5)
        assert transport.queue_length(queue) == 0
    finally:
        backend.delete(f"celery-task-meta-{message.id}")
        backend.close()
        transport.purge(queue)
        transport.close()


# -- options and errors ---------------------------------------------------------------------------
def test_options_come_from_the_query_string_or_keywords() -> None:
    transport = RedisTransport(
        "redis://127.0.0.1:6379/3?visibility_timeout=7&global_keyprefix=p:&socket_timeout=9",
        kombu_visibility_timeout=30,
    )
    assert transport.settings.visibility_timeout == 7.0
    assert transport.settings.kombu_visibility_timeout == 30.0
    assert transport.keys.unacked == "p:unacked" and transport.keys.fanout("x") == "p:/3.x"
    assert "socket_timeout=9" in transport._client_url


def test_unknown_options_and_bad_urls_are_named() -> None:
    with pytest.raises(TransportError, match="did you mean 'visibility_timeout'"):
        RedisTransport("redis://127.0.0.1:6379/0?visibilty_timeout=3")
    with pytest.raises(TransportError, match="redis://"):
        RedisTransport("redis://127.0.0.1:6379/zero")


def test_a_missing_database_is_a_clear_error() -> None:
    require("redis")
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1:6379.*out of range"):
        RedisTransport("redis://127.0.0.1:6379/999").connect()
