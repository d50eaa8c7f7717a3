"""Result backends without a server: records stored, final states kept, waiting bounded."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.backends import ChordPart, ResultBackend, open_backend
from celeriac.protocol.results import EncodedException, ResultRecord
from tests.brokers import REDIS_URL, require

#: With CELERIAC_CONTRACT_EXTRA=rediscluster these run on the Redis Cluster of
#: `scripts/services cluster up rediscluster` too (tests/clusters/test_redis_cluster.py).
_EXTRA = [
    x for x in os.environ.get("CELERIAC_CONTRACT_EXTRA", "").split(",") if x == "rediscluster"
]


@pytest.fixture(params=["memory", "sqlite", "redis", *_EXTRA])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultBackend]:
    urls = {
        "memory": f"memory://{tmp_path.name}",
        "sqlite": f"sqlite:///{tmp_path}/r.db",
        "redis": REDIS_URL.rsplit("/", 1)[0] + "/2",
        "rediscluster": os.environ.get(
            "CELERIAC_TEST_REDIS_CLUSTER_URL", "redis+cluster://127.0.0.1:17101,127.0.0.1:17102/"
        ),
    }
    if request.param == "redis":
        require("redis")
    # As App.backend opens it: result_expires and result_serializer are always passed.
    with open_backend(urls[request.param], expires=86400.0, serializer="json") as b:
        yield b


def _tid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_unknown_task_is_pending(backend: ResultBackend) -> None:
    assert backend.get("nope").status == "PENDING"


def test_store_and_get(backend: ResultBackend) -> None:
    t1 = _tid("t1")
    backend.store(ResultRecord(t1, "STARTED", {"pid": 1}))
    assert backend.get(t1).status == "STARTED"
    backend.store(ResultRecord(t1, "FAILURE", EncodedException("ValueError", ("x",))))
    record = backend.get(t1)
    assert record.status == "FAILURE" and record.exception is not None
    assert record.exception.exc_type == "ValueError"


def test_a_final_state_is_not_overwritten(backend: ResultBackend) -> None:
    t2 = _tid("t2")
    backend.store(ResultRecord(t2, "SUCCESS", 5))
    backend.store(ResultRecord(t2, "STARTED"))
    backend.store(ResultRecord(t2, "FAILURE", EncodedException("E", ())))
    assert backend.get(t2).result == 5


def test_wait_returns_when_ready_and_times_out(backend: ResultBackend) -> None:
    t3 = _tid("t3")
    with pytest.raises(TimeoutError):
        backend.wait(t3, timeout=0.1)
    ready = threading.Event()

    def finish() -> None:
        ready.wait(5)
        backend.store(ResultRecord(t3, "SUCCESS", [1, 2]))

    storer = threading.Thread(target=finish)
    storer.start()
    ready.set()
    assert backend.wait(t3, timeout=5).result == [1, 2]
    storer.join(5)  # its reply read before the fixture closes the backend


def test_forget(backend: ResultBackend) -> None:
    t4 = _tid("t4")
    backend.store(ResultRecord(t4, "SUCCESS", 1))
    backend.forget(t4)
    assert backend.get(t4).status == "PENDING"


def test_a_saved_group_is_restored_then_deleted(backend: ResultBackend) -> None:
    gid = _tid("g")
    tree = [[gid, None], [[["a", None], None], [["b", [["p", None], None]], None]]]
    assert backend.restore_group(gid) is None
    backend.save_group(gid, tree)
    assert backend.restore_group(gid) == tree
    backend.delete_group(gid)
    assert backend.restore_group(gid) is None


def test_unknown_scheme_lists_installed() -> None:
    with pytest.raises(Exception, match=r"installed: .*memory"):
        open_backend("nosuch://x")


def _part(group_id: str, i: int, state: str = "SUCCESS", size: int = 0) -> ChordPart:
    return ChordPart(group_id, f"task-{i}", i, state, i * 10, size)


@pytest.mark.parametrize("sized_by", ["backend", "body"])
def test_chord_parts_complete_exactly_once(backend: ResultBackend, sized_by: str) -> None:
    group_id = _tid("g")
    size = 4 if sized_by == "body" else 0
    if sized_by == "backend":
        backend.set_chord_size(group_id, 4)
    outcomes = [backend.chord_part_return(_part(group_id, i, size=size)) for i in (2, 0, 3)]
    # A redelivered header task counts once.
    outcomes.append(backend.chord_part_return(_part(group_id, 0, size=size)))
    assert outcomes == [None, None, None, None]
    join = backend.chord_part_return(_part(group_id, 1, size=size))
    assert join is not None and join.results == [0, 10, 20, 30] and join.failed is None
    join.release()
    # A late copy after the join neither joins again nor raises.
    assert backend.chord_part_return(_part(group_id, 3, size=size)) is None


def test_chord_with_a_failed_part_names_it(backend: ResultBackend) -> None:
    group_id = _tid("g")
    backend.set_chord_size(group_id, 2)
    assert backend.chord_part_return(_part(group_id, 0)) is None
    join = backend.chord_part_return(_part(group_id, 1, state="FAILURE"))
    assert join is not None and join.failed == ("task-1", 10)
    join.release()


def _redis_backend() -> ResultBackend:
    require("redis")
    return open_backend(REDIS_URL.rsplit("/", 1)[0] + "/2")


def test_redis_waits_in_a_thread_share_one_subscription() -> None:
    """Sequential waits reuse the thread's pub/sub connection, and a channel left over from an
    earlier wait (published to after it returned) does not end a later one."""
    with _redis_backend() as backend:
        first, second, third = _tid("w1"), _tid("w2"), _tid("w3")
        backend.store(ResultRecord(first, "SUCCESS", 1))
        assert backend.wait(first, timeout=5).result == 1
        pubsub = backend._subscribers.pubsub  # type: ignore[attr-defined]
        backend.store(ResultRecord(first, "SUCCESS", 1))  # a late message on an old channel
        with pytest.raises(TimeoutError):
            backend.wait(second, timeout=0.2)
        stored = threading.Event()

        def finish() -> None:
            stored.wait(5)
            backend.store(ResultRecord(third, "SUCCESS", 3))

        storer = threading.Thread(target=finish)
        storer.start()
        stored.set()
        assert backend.wait(third, timeout=5).result == 3
        assert backend._subscribers.pubsub is pubsub  # type: ignore[attr-defined]
        storer.join(5)  # its reply read before the backend closes


def test_redis_wait_recovers_from_a_broken_subscription() -> None:
    """A subscription whose connection was cut is replaced on the next wait."""
    with _redis_backend() as backend:
        tid = _tid("w4")
        backend.store(ResultRecord(tid, "SUCCESS", 4))
        assert backend.wait(tid, timeout=5).result == 4
        backend._subscribers.pubsub.connection.disconnect()  # type: ignore[attr-defined]
        again = _tid("w5")
        backend.store(ResultRecord(again, "SUCCESS", 5))
        assert backend.wait(again, timeout=5).result == 5


def test_redis_waits_on_one_thread_share_a_connection_and_skip_stale_announcements() -> None:
    require("redis")
    from celeriac.protocol.results import result_key

    with open_backend(REDIS_URL.rsplit("/", 1)[0] + "/2") as backend:
        first, second = _tid("first"), _tid("second")
        backend.store(ResultRecord(first, "SUCCESS", 1))
        assert backend.wait(first, timeout=5).result == 1
        kept = backend._subscribers.pubsub  # type: ignore[attr-defined]
        connection = kept.connection
        # Left over on the kept connection: an announcement for a channel no one waits on.
        kept.subscribe(result_key(first))
        backend.client.publish(result_key(first), backend.encode(ResultRecord(first, "FAILURE")))  # type: ignore[attr-defined]
        subscribed = threading.Event()

        def finish() -> None:
            subscribed.wait(5)
            backend.store(ResultRecord(second, "SUCCESS", 2))

        real_get = backend.get

        def get_then_finish(task_id: str) -> ResultRecord:
            record = real_get(task_id)
            subscribed.set()  # second's record is written only once the wait subscribed
            return record

        backend.get = get_then_finish  # type: ignore[method-assign]
        storer = threading.Thread(target=finish)
        storer.start()
        record = backend.wait(second, timeout=5)
        assert (record.task_id, record.status, record.result) == (second, "SUCCESS", 2)
        storer.join(5)  # its reply read before the backend closes
        assert backend._subscribers.pubsub is kept and kept.connection is connection  # type: ignore[attr-defined]
