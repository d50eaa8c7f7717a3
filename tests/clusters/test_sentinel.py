"""Redis with one replica and three sentinels: kill the master, then demote it (a coordinated
failover, so the worker's connections meet READONLY), mid-drain; nothing is lost, only
in-flight deliveries run twice, work resumes within seconds of the new master."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.waiting import eventually

from .conftest import FIGURES, services
from .drain import Figures, drain_with_fault

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
OPTIONS = {"master_name": "celeriac", "visibility_timeout": 10}
SENTINEL = redis.Redis(host="127.0.0.1", port=26379)
MASTER_PORT, REPLICA_PORT = 16379, 16380


def master_port() -> int:
    _host, port = SENTINEL.sentinel_get_master_addr_by_name("celeriac")
    return int(port)


def replica_in_sync() -> None:
    """The replica is attached to the master (Redis replicates asynchronously: what the master
    took in the last moments before a kill may still be lost; that is the guarantee tested)."""
    assert redis.Redis(port=MASTER_PORT).execute_command("WAIT", 1, 5000) == 1


def failover() -> None:
    """``SENTINEL FAILOVER``, once the sentinel has found a replica it can promote: a topology
    just started is refused (NOGOODSLAVE) until the sentinel's first look at the master lists
    the replica and the replica's link to the master is up."""

    def promotable() -> bool:
        for replica in SENTINEL.sentinel_slaves("celeriac"):
            flags = set(str(replica.get("flags", "")).split(","))
            if not flags & {"s_down", "o_down", "disconnected"} and replica.get(
                "master-link-status"
            ) in ("ok", b"ok"):
                return True
        return False

    eventually(promotable, 30, "a replica the sentinel can promote", interval=0.1)
    SENTINEL.execute_command("SENTINEL", "FAILOVER", "celeriac")


def demoted(port: int) -> bool:
    """Whether the server on ``port`` has become a replica."""
    return redis.Redis(port=port).info("replication")["role"] == "slave"


def wait_for_new_master() -> float:
    """Return once the sentinels name the replica as the master (a ``time.time()``)."""
    eventually(lambda: master_port() == REPLICA_PORT, 60, "a new master", interval=0.05)
    return time.time()


def check(figures: Figures) -> None:
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < 10.0, figures
    assert figures.ran_after > 0, figures  # the fault landed before the drain ended


def test_killing_the_master(sentinel_cluster: str, tmp_path: Path) -> None:
    figures = Figures("redis + 3 sentinels", "kill the master")

    def fault(queue: str) -> float:
        assert master_port() == MASTER_PORT
        replica_in_sync()
        services("kill", "sentinel", "master")
        return wait_for_new_master()

    drain_with_fault(tmp_path, figures, sentinel_cluster, sentinel_cluster, OPTIONS, fault)
    check(figures)


def test_demoting_the_master(sentinel_cluster: str, tmp_path: Path) -> None:
    figures = Figures("redis + 3 sentinels", "failover: master demoted (READONLY)")

    def fault(queue: str) -> float:
        assert master_port() == MASTER_PORT
        replica_in_sync()
        failover()
        return wait_for_new_master()

    drain_with_fault(tmp_path, figures, sentinel_cluster, sentinel_cluster, OPTIONS, fault)
    check(figures)


def test_the_sentinel_result_backend_follows_a_failover(sentinel_cluster: str) -> None:
    from celeriac.backends import open_backend
    from celeriac.protocol.results import ResultRecord

    backend = open_backend(sentinel_cluster, master_name="celeriac", expires=600)
    before, after = str(uuid.uuid4()), str(uuid.uuid4())
    backend.store(ResultRecord(before, "SUCCESS", result=1))
    # Replication is asynchronous: wait until the replica has the record before the failover.
    assert backend.client.execute_command("WAIT", 1, 5000) == 1  # type: ignore[attr-defined]
    failover()
    wait_for_new_master()
    # Until the old master is told to follow the new one, it still takes writes that the
    # resync then drops (Sentinel's window, for every client): wait it out.
    eventually(lambda: demoted(MASTER_PORT), 30, "the old master demoted", interval=0.05)
    assert backend.get(before).status == "SUCCESS"
    backend.store(ResultRecord(after, "SUCCESS", result=2))  # on the new master
    assert backend.get(after).result == 2
    assert redis.Redis(port=REPLICA_PORT).exists(f"celery-task-meta-{after}") == 1
