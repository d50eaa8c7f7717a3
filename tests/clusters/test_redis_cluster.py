"""Redis Cluster (3 masters, 3 replicas): the transport's contract on it, and a worker draining
while the master of its queue's slot is SIGKILLed and its replica promoted: nothing lost, only
in-flight deliveries run twice, work resumes within seconds of the new master."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from celeriac.protocol import WireMessage
from celeriac.transports.redis.cluster import RedisClusterTransport, slot_tag
from tests.waiting import eventually

from .conftest import FIGURES, services
from .drain import REPO, Figures, drain_with_fault

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
URL = "redis+cluster://127.0.0.1:17101,127.0.0.1:17102,127.0.0.1:17103/"
PORTS = tuple(range(17101, 17107))
#: The masters `redis-cli --cluster create` makes of the first three nodes.
MASTERS = (17101, 17102, 17103)
OPTIONS = {"visibility_timeout": 10}


@pytest.fixture
def redis_cluster() -> Iterator[str]:
    """A fresh Redis Cluster for each test; its redis+cluster:// URL."""
    services("up", "rediscluster")
    try:
        yield URL
    finally:
        services("down", "rediscluster")


def test_the_transport_and_backend_contracts_hold_on_the_cluster(redis_cluster: str) -> None:
    """The contract suites every transport and every result backend pass
    (tests/transports/test_contract.py, tests/sdk/test_backends.py), run on the cluster: each
    queue's and each chord's scripts find all their keys in one slot."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "rediscluster",
         "tests/transports/test_contract.py", "tests/sdk/test_backends.py"],
        env={**os.environ, "CELERIAC_CONTRACT_EXTRA": "rediscluster",
             "CELERIAC_TEST_REDIS_CLUSTER_URL": redis_cluster},
        cwd=REPO, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


def test_an_app_with_broker_and_results_on_the_cluster(redis_cluster: str) -> None:
    """The README's example, end to end: tasks, a chord, an awaited task and a saved group, with
    the broker and the result backend both on the cluster (the app opens the backend with its
    own options, result_serializer among them)."""
    from celeriac import App, chord, group
    from celeriac.result import GroupResult
    from celeriac.worker import run_worker, stop_worker

    app = App("cluster-e2e", broker=redis_cluster, result_backend=redis_cluster,
              task_default_queue=f"cluster.e2e.{uuid.uuid4().hex[:6]}",
              broker_transport_options=OPTIONS)  # fmt: skip

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    async def awaited() -> int:
        return await (await add.adelay(20, 1)).aget(timeout=20)

    worker = run_worker(app, concurrency=2)
    try:
        assert add.delay(2, 3).get(timeout=20) == 5
        assert chord([add.s(i, i) for i in range(6)], tsum.s()).apply_async().get(timeout=20) == 30
        assert asyncio.run(awaited()) == 21
        saved = group(add.s(i, 1) for i in range(3)).apply_async()
        saved.save()
        restored = GroupResult.restore(saved.id, app=app)
        assert restored is not None and restored.get(timeout=20) == [1, 2, 3]
        restored.delete()
        assert GroupResult.restore(saved.id, app=app) is None
    finally:
        stop_worker(worker)
        app.close()


def queues_on_every_master() -> list[str]:
    """One queue name whose slot each master serves."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < len(MASTERS):
        name = f"cluster.multi.{uuid.uuid4().hex[:6]}.{n}"
        found.setdefault(slot_master(name), name)
        n += 1
    return list(found.values())


def wire(n: int) -> WireMessage:
    return WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"id": str(n)}, {})


def test_one_consumer_of_queues_on_every_master(redis_cluster: str) -> None:
    """A consumer whose queues live on different masters fetches from each, renews its hold on
    each (another consumer gets none of what it holds, over several visibility timeouts), and
    dead-letters within each queue's slot."""
    holder_side = RedisClusterTransport(redis_cluster, visibility_timeout=1)
    other_side = RedisClusterTransport(redis_cluster, visibility_timeout=1)
    queues = queues_on_every_master()
    try:
        for i, q in enumerate(queues):
            holder_side.publish(q, wire(i))
        with (
            holder_side.consumer(queues, prefetch=len(queues)) as holder,
            other_side.consumer(queues, prefetch=len(queues)) as other,
        ):
            held = []
            deadline = time.monotonic() + 10
            while len(held) < len(queues) and time.monotonic() < deadline:
                held += holder.fetch(len(queues), timeout=0.5)
            assert sorted(d.queue for d in held) == sorted(queues)
            until = time.monotonic() + 3.5  # several visibility timeouts
            while time.monotonic() < until:
                assert holder.fetch(1, timeout=0.2) == []  # renews every slot's hold, no room
                assert other.fetch(1, timeout=0.2) == []
            first, *rest = held
            holder.reject(first, "test")
            holder.ack(rest)
        assert all(holder_side.queue_length(q) == 0 for q in queues)
        assert holder_side.queue_length(f"{first.queue}.dlq") == 1
    finally:
        for q in queues:
            holder_side.purge(q)
            holder_side.purge(f"{q}.dlq")
        holder_side.close()
        other_side.close()


def slot_master(queue: str) -> int:
    """The port of the master serving ``queue``'s hash slot, as a live node sees it."""
    return key_master(slot_tag(queue))


def key_master(key: str) -> int:
    """The port of the master serving ``key``'s slot, as a live node sees it."""
    slot = key_slot(key.encode())
    for port in PORTS:
        try:
            for start, end, master, *_ in redis.Redis(port=port).cluster("slots"):
                if start <= slot <= end:
                    return int(master[1])
        except redis.ConnectionError:
            continue
    raise AssertionError("no node of the cluster answers")


def cluster_ok(port: int) -> bool:
    try:
        return redis.Redis(port=port).cluster("info")["cluster_state"] == "ok"
    except redis.ConnectionError:
        return False


def test_killing_the_master_of_the_queues_slot(redis_cluster: str, tmp_path: Path) -> None:
    figures = Figures("redis cluster 3+3", "kill the queue's master")

    def fault(queue: str) -> float:
        old = slot_master(queue)
        # Replication is asynchronous: what the master took in its last moments may be lost
        # with it; that the replica is attached and caught up is the tested guarantee.
        assert redis.Redis(port=old).execute_command("WAIT", 1, 5000) == 1
        services("kill", "rediscluster", str(old - 17100))
        figures.extra["killed"] = old

        def promoted() -> bool:
            alive = [p for p in PORTS if p != old]
            return slot_master(queue) != old and all(cluster_ok(p) for p in alive)

        eventually(promoted, 60, "a replica promoted", interval=0.05)
        return time.time()

    drain_with_fault(tmp_path, figures, redis_cluster, redis_cluster, OPTIONS, fault)
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < 10.0, figures
    assert figures.ran_after > 0, figures  # the fault landed before the drain ended


def test_killing_another_master(redis_cluster: str, tmp_path: Path) -> None:
    """A master that does not hold the queue: the worker's other connections (remote control's
    subscription, say) may be on it; draining must go on."""
    figures = Figures("redis cluster 3+3", "kill another master")

    def fault(queue: str) -> float:
        other = next(p for p in MASTERS if p != slot_master(queue))
        assert redis.Redis(port=other).execute_command("WAIT", 1, 5000) == 1
        services("kill", "rediscluster", str(other - 17100))
        alive = [p for p in PORTS if p != other]
        eventually(lambda: all(cluster_ok(p) for p in alive), 60, "a replica promoted", 0.05)
        return time.time()

    drain_with_fault(tmp_path, figures, redis_cluster, redis_cluster, OPTIONS, fault)
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < 10.0, figures
    assert figures.ran_after > 0, figures


def test_the_result_backend_follows_a_failover(redis_cluster: str) -> None:
    from celeriac.backends import open_backend
    from celeriac.protocol.results import ResultRecord

    backend = open_backend(redis_cluster, expires=600)
    before, after = str(uuid.uuid4()), str(uuid.uuid4())
    backend.store(ResultRecord(before, "SUCCESS", result=1))
    old = key_master(f"celery-task-meta-{before}")
    # Replication is asynchronous: the replica must hold the record before the master dies.
    assert redis.Redis(port=old).execute_command("WAIT", 1, 5000) == 1
    services("kill", "rediscluster", str(old - 17100))
    alive = [p for p in PORTS if p != old]
    eventually(lambda: all(cluster_ok(p) for p in alive), 60, "a replica promoted", 0.05)
    assert backend.get(before).status == "SUCCESS"
    backend.store(ResultRecord(after, "SUCCESS", result=2))
    assert backend.wait(after, timeout=10).result == 2
    backend.close()


def node_id(port: int) -> str:
    return str(redis.Redis(port=port).execute_command("CLUSTER", "MYID").decode())


def test_moving_the_queues_slot_to_another_master(redis_cluster: str, tmp_path: Path) -> None:
    """A resharding mid-drain, as `redis-cli --cluster reshard` does it one slot at a time: the
    worker meets ASK and TRYAGAIN while the keys move, then MOVED."""
    figures = Figures("redis cluster 3+3", "move the queue's slot (ASK, MOVED)")

    def fault(queue: str) -> float:
        slot = key_slot(slot_tag(queue).encode())
        source = slot_master(queue)
        target = next(p for p in MASTERS if p != source)
        src, dst = redis.Redis(port=source), redis.Redis(port=target)
        src_id, dst_id = node_id(source), node_id(target)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        pace = threading.Event()  # never set: its bounded wait paces the migration
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
            # One key every 0.3 s: the worker's scripts meet a half-moved slot for seconds
            # (TRYAGAIN while their keys are split, ASK for the keys already moved).
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            pace.wait(0.3)
        for port in MASTERS:
            redis.Redis(port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        figures.extra["moved_keys"] = moved
        assert slot_master(queue) == target
        return time.time()

    drain_with_fault(tmp_path, figures, redis_cluster, redis_cluster, OPTIONS, fault)
    FIGURES.append(figures)
    assert figures.extra["moved_keys"] > 0, figures
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < 10.0, figures
    assert figures.ran_after > 0, figures
