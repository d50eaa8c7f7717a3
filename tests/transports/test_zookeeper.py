"""ZooKeeper-specific behaviour (SPEC.md §6.6): Kombu's node layout, ephemeral claims, delayed
items, session loss, size limit and errors; Celery/Kombu 5.7 interop both ways.

Every test works under a base node of its own (the URL's path), read back with a bare kazoo client.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.queue import Queue as KazooQueue

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes import zookeeper as envelope
from celeriac.transports import (
    REJECT_REASON_HEADER,
    BrokerUnavailable,
    Delivery,
    QueueSpec,
    TransportError,
    resolve,
)
from celeriac.transports.zookeeper import ZooKeeperTransport
from celeriac.transports.zookeeper.broadcast import BROADCAST_TTL, sweep
from celeriac.transports.zookeeper.consumer import TRUNCATED_HEADER
from celeriac.transports.zookeeper.counts import count
from celeriac.transports.zookeeper.transport import MAX_NODE_BYTES
from interop import celery_env
from tests.brokers import ZOOKEEPER_URL, require, unique
from tests.protocol.vectors import load
from tests.waiting import eventually

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "protocol" / "vectors"


def wire(n: int, **options: Any) -> WireMessage:
    return encode_task(new_task_message("zk.task", (n,), **options))


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


def hosts() -> str:
    return ZOOKEEPER_URL.split("://", 1)[1].rstrip("/")


@pytest.fixture
def base() -> str:
    require("zookeeper")
    return "/" + unique("zk-test")


@pytest.fixture
def raw(base: str) -> Iterator[KazooClient]:
    client = KazooClient(hosts=hosts())
    client.start(timeout=10)
    yield client
    client.delete(base, recursive=True)
    client.stop()
    client.close()


@pytest.fixture
def make(base: str) -> Iterator[Any]:
    opened: list[ZooKeeperTransport] = []

    def build(**options: Any) -> ZooKeeperTransport:
        transport = ZooKeeperTransport(f"zookeeper://{hosts()}{base}", **options)
        transport.connect()
        opened.append(transport)
        return transport

    yield build
    for transport in opened:
        transport.close()


def drain(transport: ZooKeeperTransport, queue: str, count: int, timeout: float = 15) -> list[Any]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    with transport.consumer([queue], prefetch=max(count, 1)) as consumer:
        while len(got) < count and time.monotonic() < deadline:
            batch = consumer.fetch(count - len(got), timeout=0.5)
            consumer.ack(batch)
            got += batch
    return [number(d) for d in got]


def test_items_are_kazoo_queue_nodes_named_by_priority(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.declare_queue(QueueSpec("jobs"))
    for priority in (0, 6, 9, 12):
        transport.publish("jobs", wire(priority, priority=priority))
    names = sorted(raw.get_children(f"{base}/jobs"))
    # Node priority is 9 - message priority (clamped to 0..9): kazoo serves lower names first.
    assert [n[: len("entry-000-")] for n in names] == [
        "entry-000-",
        "entry-000-",
        "entry-003-",
        "entry-009-",
    ]
    assert all(len(n) == len("entry-000-") + 10 and n[-10:].isdigit() for n in names)
    data, _ = raw.get(f"{base}/jobs/{names[-1]}")
    message, info = json_envelope.unpack_wire(data)
    assert decode_task(message).args == (0,)
    assert info.routing_key == "jobs"
    # Only items live in the queue node, so Kombu's size (the child count) is right.
    assert raw.exists(f"{base}/jobs").children_count == 4
    assert raw.exists(f"{base}/jobs.dlq") is not None


def test_a_node_written_as_kombu_writes_it_is_read(make: Any, raw: KazooClient, base: str) -> None:
    vector = load(VECTORS / "synthetic" / "zookeeper" / "kwargs_priority.json")
    payload = vector["wire"]["payload"].encode()
    # kazoo's Queue recipe is what Kombu's transport calls, with priority 9 - 6.
    KazooQueue(raw, f"{base}/celery").put(payload, priority=3)
    assert raw.get_children(f"{base}/celery")[0].startswith("entry-003-")
    transport = make()
    with transport.consumer(["celery"], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        assert delivery.message is not None
        task = decode_task(delivery.message)
        assert task.task == vector["expect"]["task"]
        assert task.kwargs == vector["expect"]["kwargs"]
        consumer.ack([delivery])
    assert raw.get_children(f"{base}/celery") == []


def test_kazoo_queue_reads_what_we_publish_in_priority_order(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.publish_many("q", [wire(p, priority=p) for p in (1, 8, 5)])
    queue = KazooQueue(raw, f"{base}/q")
    got = [decode_task(json_envelope.unpack_wire(queue.get())[0]).args[0] for _ in range(3)]
    assert got == [8, 5, 1]
    assert queue.get() is None


def test_claims_are_ephemeral_and_vanish_with_the_session(
    make: Any, raw: KazooClient, base: str
) -> None:
    holder, other = make(), make()
    holder.publish_many("q", [wire(i) for i in range(3)])
    consumer = holder.consumer(["q"], prefetch=2)
    held = consumer.fetch(2, timeout=5)
    assert len(held) == 2
    claims = raw.get_children(f"{base}/.celeriac/claims/q")
    assert sorted(claims) == sorted(d.tag.rsplit("/", 1)[1] for d in held)
    for claim in claims:  # owned by the consumer's own session
        stat = raw.exists(f"{base}/.celeriac/claims/q/{claim}")
        assert stat is not None and stat.ephemeralOwner == consumer.client.client_id[0]
    # Claimed items stay in the queue node but are neither counted nor handed to others.
    assert raw.exists(f"{base}/q").children_count == 3
    assert other.queue_length("q") == 1
    with other.consumer(["q"], prefetch=3) as second:
        (free,) = second.fetch(3, timeout=5)
        assert number(free) not in {number(d) for d in held}
        assert second.fetch(3, timeout=0.3) == []
        second.ack([free])
    holder.close()  # closes its consumers: their sessions end, and their claims with them
    assert raw.get_children(f"{base}/.celeriac/claims/q") == []
    assert sorted(drain(other, "q", 2)) == sorted(number(d) for d in held)


def test_ack_and_requeue_after_the_session_expired(make: Any, raw: KazooClient, base: str) -> None:
    transport = make(session_timeout=4)
    transport.publish_many("q", [wire(1), wire(2)])
    consumer = transport.consumer(["q"], prefetch=2)
    first, second = consumer.fetch(2, timeout=5)
    old_session = consumer.client.client_id
    # ZooKeeper's way to expire a session on purpose: close it from a second connection.
    twin = KazooClient(hosts=hosts(), client_id=old_session)
    twin.start(timeout=10)
    twin.stop()
    twin.close()
    eventually(lambda: raw.get_children(f"{base}/.celeriac/claims/q") == [], what="claims gone")
    consumer.ack([first])  # the claim is gone: the ack still removes the item, and never raises
    consumer.requeue(second)
    assert consumer.client.client_id != old_session
    again = eventually(lambda: consumer.fetch(2, timeout=0.5), what="redelivery")
    assert [number(d) for d in again] == [2]
    consumer.ack(again)
    assert raw.get_children(f"{base}/q") == []
    consumer.close()


def test_requeued_item_keeps_its_place_and_is_flagged(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.publish_many("q", [wire(1), wire(2)])
    with transport.consumer(["q"], prefetch=1) as consumer:
        (first,) = consumer.fetch(1, timeout=5)
        consumer.requeue(first)
        data, stat = raw.get(first.tag)
        assert stat.version == 1
        assert json.loads(data)["properties"]["delivery_info"]["redelivered"] is True
        (again,) = consumer.fetch(1, timeout=5)
        assert again.tag == first.tag and again.redelivered and number(again) == 1
        consumer.ack([again])


def test_an_item_whose_holder_died_comes_back_counted(
    make: Any, raw: KazooClient, base: str
) -> None:
    """The claim ends with the session; the count node (persistent) remembers the delivery, so
    a message that kills every worker that takes it still reaches worker_max_deliveries."""
    transport = make()
    transport.publish_many("q", [wire(1), wire(2)])
    for expected in (1, 2, 3):
        consumer = transport.consumer(["q"], prefetch=1)
        (held,) = consumer.fetch(1, timeout=5)
        assert number(held) == 1 and held.deliveries == expected
        assert held.redelivered is (expected > 1)
        name = held.tag.rsplit("/", 1)[1]
        assert raw.exists(f"{base}/.celeriac/deliveries/q/{name}").version == expected - 1
        consumer.close()  # as a killed worker's session: the claim goes, not a word said
    with transport.consumer(["q"], prefetch=2) as consumer:
        got = consumer.fetch(2, timeout=5)
        assert sorted((number(d), d.deliveries) for d in got) == [(1, 4), (2, 1)]
        consumer.ack(got)
    # Settled: nothing is left behind, neither items nor counts.
    assert raw.get_children(f"{base}/q") == []
    assert raw.get_children(f"{base}/.celeriac/deliveries/q") == []


def test_counts_go_with_their_items_and_orphans_are_swept(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.publish_many("q", [wire(i) for i in range(4)])
    counts = f"{base}/.celeriac/deliveries/q"
    consumer = transport.consumer(["q"], prefetch=2)
    first, second = consumer.fetch(2, timeout=5)
    consumer.reject(first, "invalid-message: test")
    consumer.requeue(second)  # keeps its count: the next delivery bumps it
    assert raw.get_children(counts) == [second.tag.rsplit("/", 1)[1]]
    consumer.close()
    # A count whose item a foreign consumer (Kombu's deletes the node) took is swept.
    raw.delete(second.tag)
    raw.create(f"{counts}/entry-004-9999999999", b"")  # an item that was never there
    assert transport.purge("q") == 2
    with transport.consumer(["q"], prefetch=1) as again:
        assert again.fetch(1, timeout=0.3) == []
    assert raw.get_children(counts) == []
    transport.publish("q", wire(9))
    with transport.consumer(["q"], prefetch=1) as consumer:
        (held,) = consumer.fetch(1, timeout=5)
        consumer.requeue(held)
        (again_held,) = consumer.fetch(1, timeout=5)
        assert again_held.deliveries == 2
        transport.purge("q")  # held: left alone, count and all
        assert raw.get_children(counts) == [held.tag.rsplit("/", 1)[1]]
        consumer.ack([again_held])
    assert raw.get_children(counts) == []


def test_a_count_made_on_an_out_of_date_look_is_still_right(
    make: Any, raw: KazooClient, base: str
) -> None:
    """The look that says which items have a count node may be stale (another consumer made
    or deleted one since): the multi fails and each item is counted one by one."""
    transport = make()
    transport.ensure_queue("q")
    raw.create(f"{base}/.celeriac/deliveries/q/entry-004-0000000002", b"")  # delivered once
    items = [("q", "entry-004-0000000001"), ("q", "entry-004-0000000002")]
    client = transport.client_or_raise()
    # The look said the other way round: 1 has a node, 2 has none.
    assert count(client, transport.layout, items, {items[0]}) == [1, 2]
    assert count(client, transport.layout, items, set(items)) == [2, 3]


def test_delayed_items_wait_in_their_node_then_move_once(
    make: Any, raw: KazooClient, base: str
) -> None:
    a, b = make(), make()
    a.publish("q", wire(5, priority=7), delay=1.0)
    (name,) = raw.get_children(f"{base}/.celeriac/delayed/q")
    due_ms, node_priority = envelope.parse_delayed(name) or (0, 0)
    assert node_priority == 2 and abs(due_ms / 1000 - (time.time() + 1.0)) < 0.5
    assert raw.get_children(f"{base}/q") == [] and a.queue_length("q") == 0
    # Two consumers wait for it; exactly one move happens and one delivery results.
    results: list[list[Delivery]] = [[], []]
    consumers = [a.consumer(["q"], prefetch=1), b.consumer(["q"], prefetch=1)]

    def wait(i: int) -> None:
        results[i] = consumers[i].fetch(1, timeout=3)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    got = results[0] + results[1]
    assert [number(d) for d in got] == [5]
    assert time.time() * 1000 >= due_ms
    assert got[0].tag.rsplit("/", 1)[1].startswith("entry-002-")
    assert raw.get_children(f"{base}/.celeriac/delayed/q") == []
    for consumer in consumers:
        consumer.ack(got)
        consumer.close()
    assert raw.get_children(f"{base}/q") == []


def test_a_wake_up_needs_no_polling(make: Any) -> None:
    consumer_side, sender = make(), make()
    consumer_side.declare_queue(QueueSpec("q"))
    got: list[Delivery] = []
    with consumer_side.consumer(["q"], prefetch=1) as consumer:
        waiter = threading.Thread(target=lambda: got.extend(consumer.fetch(1, timeout=10)))
        waiter.start()
        # The waiter has looked and left a watch on the queue node: now it blocks on it.
        watched = consumer.client._child_watchers  # type: ignore[attr-defined]
        eventually(lambda: any(path.endswith("/q") for path in watched), what="watch set")
        sent = time.monotonic()
        sender.publish("q", wire(3))
        waiter.join(10)
        assert [number(d) for d in got] == [3]
        assert time.monotonic() - sent < 1.0  # woken by the watch, not after the 10 s timeout
        consumer.ack(got)


def test_oversize_message_fails_at_publish_naming_the_limit(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.declare_queue(QueueSpec("q"))
    big = WireMessage(b"x" * MAX_NODE_BYTES, "application/json", "utf-8", {}, {})
    with pytest.raises(TransportError) as info:
        transport.publish("q", big)
    text = str(info.value)
    assert str(MAX_NODE_BYTES) in text and "jute.maxbuffer" in text
    assert "compress" in text and "reference" in text
    with pytest.raises(TransportError):
        transport.publish_many("q", [wire(1), big])
    assert raw.get_children(f"{base}/q") == []  # nothing of a refused batch was written
    # The limit is real: the server takes a node of exactly that size.
    raw.create(f"{base}/q/entry-009-", b"y" * MAX_NODE_BYTES, sequence=True)
    assert transport.queue_length("q") == 1


def test_wrong_host_is_one_clear_error() -> None:
    url = "zookeeper://user:s3cret@127.0.0.1:1/app"
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        resolve(url)(url, connect_timeout=1).connect()
    assert time.monotonic() - started < 5
    text = str(info.value)
    assert "127.0.0.1:1" in text and "s3cret" not in text
    assert "host and port" in text and "refused" in text  # why the first attempt failed


def test_base_path_is_created_and_names_are_checked(base: str, raw: KazooClient) -> None:
    transport = ZooKeeperTransport(f"zookeeper://{hosts()}{base}/nested/deeper")
    with transport:
        assert raw.exists(f"{base}/nested/deeper") is not None
        with pytest.raises(ValueError, match="ZooKeeper node name"):
            transport.publish("a/b", wire(1))
        with pytest.raises(ValueError, match="ZooKeeper node name"):
            transport.declare_queue(QueueSpec(".celeriac"))


def test_broadcasts_start_after_subscribing_and_old_ones_are_swept(
    make: Any, raw: KazooClient, base: str
) -> None:
    sender, receiver = make(), make()
    sender.broadcast("ex", wire(1))
    with receiver.subscribe("ex") as subscription:
        assert subscription.get(timeout=0.3) is None  # sent before it subscribed
        sender.broadcast("ex", wire(2))
        sender.broadcast("ex", wire(3))
        got = [subscription.get(timeout=5), subscription.get(timeout=5)]
        assert [decode_task(m).args[0] for m in got if m is not None] == [2, 3]
        assert subscription.get(timeout=0.3) is None  # each exactly once
    folder = f"{base}/.celeriac/broadcast/ex"
    assert len(raw.get_children(folder)) == 3
    assert sender.client is not None
    later = int((time.time() + BROADCAST_TTL + 1) * 1000)
    assert sweep(sender.client, folder, later) == 3
    assert raw.get_children(folder) == []


# Real Celery and Kombu 5.7 on the same nodes. Their venv has no kazoo, so the script is given
# ours alone, through a folder holding a link to it.
KOMBU_PEER = textwrap.dedent(
    """
    import json, sys
    from celery import Celery
    from kombu import Connection, Queue

    command, url, queue, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if command == "send":
        app = Celery("peer", broker=url)
        for i in range(count):
            app.send_task("zk.add", args=(i,), queue=queue, priority=i)
    elif command == "get":
        with Connection(url) as conn:
            bound = Queue(queue, routing_key=queue)(conn.channel())
            for _ in range(count):
                message = bound.get(no_ack=True)
                args = message.decode()[0]
                print(json.dumps({"task": message.headers["task"], "args": args}))
    """
)


@pytest.fixture
def kombu(tmp_path: Path) -> Any:
    import kazoo

    celery_env.ensure(quiet=True)
    script = tmp_path / "kombu_peer.py"
    script.write_text(KOMBU_PEER)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "kazoo").symlink_to(Path(kazoo.__file__).parent)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "lib")}

    def run(*args: str) -> str:
        return str(celery_env.run_script(script, *args, env=env, timeout=120).stdout)

    return run


@pytest.mark.celery
def test_celery_client_to_our_consumer(make: Any, base: str, raw: KazooClient, kombu: Any) -> None:
    kombu("send", f"zookeeper://{hosts()}{base}", "tasks", "4")
    transport = make()
    assert transport.queue_length("tasks") == 4
    with transport.consumer(["tasks"], prefetch=4) as consumer:
        got = consumer.fetch(4, timeout=5)
        tasks = [decode_task(d.message) for d in got if d.message is not None]
        consumer.ack(got)
    assert [t.task for t in tasks] == ["zk.add"] * 4
    assert [t.args[0] for t in tasks] == [3, 2, 1, 0]  # Celery's priorities, higher first


@pytest.mark.celery
def test_kombu_consumer_reads_what_we_publish(make: Any, base: str, kombu: Any) -> None:
    transport = make()
    transport.publish_many("tasks", [wire(i, priority=i) for i in range(3)])
    out = kombu("get", f"zookeeper://{hosts()}{base}", "tasks", "3")
    got = [json.loads(line) for line in out.splitlines()]
    assert got == [{"task": "zk.task", "args": [i]} for i in (2, 1, 0)]
    assert transport.queue_length("tasks") == 0


def test_options_come_from_the_query_string_or_keywords() -> None:
    transport = ZooKeeperTransport(
        "zookeeper://127.0.0.1:2181/app?session_timeout=6&op_timeout=3",
        op_timeout=4,
        visibility_timeout=30,
    )
    assert transport.settings.session_timeout == 6.0
    assert transport.settings.op_timeout == 4.0  # keywords win over the query string
    assert transport.layout.base == "/app"  # the query is not part of the base path
    with pytest.raises(TransportError, match="did you mean 'session_timeout'"):
        ZooKeeperTransport("zookeeper://127.0.0.1:2181/app", sesion_timeout=6)
    with pytest.raises(TransportError, match="must be positive"):
        ZooKeeperTransport("zookeeper://127.0.0.1:2181/app?connect_timeout=0")


def test_reject_moves_the_item_to_the_dlq_node_in_one_step(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.declare_queue(QueueSpec("q"))
    transport.publish("q", wire(4, priority=8))
    with transport.consumer(["q"], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        consumer.reject(delivery, "unknown-task: zk.task")
        assert raw.get_children(f"{base}/.celeriac/claims/q") == []
    assert raw.get_children(f"{base}/q") == []
    (name,) = raw.get_children(f"{base}/q.dlq")
    assert name.startswith("entry-001-")  # the priority is kept
    data, _ = raw.get(f"{base}/q.dlq/{name}")
    message, _ = json_envelope.unpack_wire(data)
    assert message.headers[REJECT_REASON_HEADER] == "unknown-task: zk.task"
    assert decode_task(message).args == (4,)


def test_a_huge_unreadable_item_is_dead_lettered_cut_to_fit(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.declare_queue(QueueSpec("q"))
    junk = b"\xff" + b"j" * (MAX_NODE_BYTES - 1)  # fits a node; its Base64 does not
    raw.create(f"{base}/q/entry-009-", junk, sequence=True)
    with transport.consumer(["q"], prefetch=1) as consumer:
        (delivery,) = consumer.fetch(1, timeout=5)
        assert delivery.message is None and delivery.raw == junk
        consumer.reject(delivery, "malformed-envelope: not JSON")
    assert raw.get_children(f"{base}/q") == []
    (name,) = raw.get_children(f"{base}/q.dlq")
    data, _ = raw.get(f"{base}/q.dlq/{name}")
    assert len(data) <= MAX_NODE_BYTES
    message, _ = json_envelope.unpack_wire(data)
    assert message.headers[REJECT_REASON_HEADER] == "malformed-envelope: not JSON"
    assert message.headers[TRUNCATED_HEADER] == len(junk)
    assert junk.startswith(message.body) and len(message.body) > MAX_NODE_BYTES // 2


def test_queue_nodes_deleted_by_hand_are_made_again(make: Any, raw: KazooClient, base: str) -> None:
    transport = make()
    transport.publish("q", wire(1))
    consumer = transport.consumer(["q"], prefetch=2)
    raw.delete(f"{base}/q", recursive=True)
    raw.delete(f"{base}/.celeriac", recursive=True)
    assert consumer.fetch(2, timeout=0.3) == []  # the lost item is gone; the nodes come back
    assert raw.exists(f"{base}/.celeriac/claims/q") is not None
    raw.delete(f"{base}/q", recursive=True)
    raw.delete(f"{base}/.celeriac", recursive=True)
    transport.publish("q", wire(2))  # the transport made the nodes before: it makes them again
    transport.publish_many("q", [wire(3)])
    got = eventually(lambda: consumer.fetch(2, timeout=0.5), what="delivery after recreation")
    got += consumer.fetch(1, timeout=2)
    assert sorted(number(d) for d in got) == [2, 3]
    consumer.ack(got)
    consumer.close()


def test_a_stray_claim_of_our_own_session_is_dropped(
    make: Any, raw: KazooClient, base: str
) -> None:
    transport = make()
    transport.publish("q", wire(8))
    (name,) = raw.get_children(f"{base}/q")
    consumer = transport.consumer(["q"], prefetch=1)
    # As if a claim's create had reached the server but its reply was lost on the way back.
    consumer.client.create(f"{base}/.celeriac/claims/q/{name}", b"", ephemeral=True)
    assert consumer.fetch(1, timeout=0.2) == []  # a claim is a claim, even a stray one
    consumer._strays = True  # what an unanswered create sets
    (delivery,) = consumer.fetch(1, timeout=5)
    assert number(delivery) == 8
    consumer.ack([delivery])
    assert raw.get_children(f"{base}/.celeriac/claims/q") == []
    consumer.close()


def test_purge_leaves_held_items_alone(make: Any, raw: KazooClient, base: str) -> None:
    transport = make()
    transport.publish_many("q", [wire(i) for i in range(3)])
    with transport.consumer(["q"], prefetch=1) as consumer:
        (held,) = consumer.fetch(1, timeout=5)
        assert transport.purge("q") == 2
        assert raw.get_children(f"{base}/q") == [held.tag.rsplit("/", 1)[1]]
        consumer.ack([held])
    assert raw.get_children(f"{base}/q") == []


def test_competing_consumers_share_a_queue_without_duplicates(make: Any) -> None:
    sender = make()
    sender.publish_many("q", [wire(i) for i in range(300)])
    seen: list[list[int]] = [[], [], []]
    ready = threading.Barrier(3, timeout=20)

    def work(i: int) -> None:
        transport = make()  # a connection per thread, as the contract asks
        with transport.consumer(["q"], prefetch=20) as consumer:
            ready.wait()  # all three start together, so the work is shared
            deadline = time.monotonic() + 30
            while sum(map(len, seen)) < 300 and time.monotonic() < deadline:
                batch = consumer.fetch(20, timeout=0.2)
                seen[i] += [number(d) for d in batch]
                consumer.ack(batch)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    everything = seen[0] + seen[1] + seen[2]
    assert sorted(everything) == list(range(300))  # each exactly once
    assert sum(1 for part in seen if part) >= 2  # and the work was shared
    assert sender.queue_length("q") == 0
