"""A 3-broker Kafka cluster (KRaft, replication 3, min.insync.replicas=2): kill the broker that
leads the task topic's partition mid-drain; nothing is lost, only in-flight records run twice,
and the worker resumes soon after the partition has a new leader."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from tests.waiting import eventually

from .conftest import FIGURES, services
from .drain import Figures, drain_with_fault

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
SERVERS = [f"127.0.0.1:{19290 + n}" for n in (1, 2, 3)]
#: One partition, so one broker leads all of the queue's records; every record on 3 brokers.
OPTIONS = {"partitions": 1, "replication_factor": 3}


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[str]:
    """Three Kafka brokers; the kafka:// URL that names them all."""
    services("up", "kafka")
    try:
        yield "kafka://" + ",".join(SERVERS)
    finally:
        services("down", "kafka")


def leader_of(topic: str, servers: list[str]) -> int | None:
    """The node id (1..3) leading partition 0 of ``topic``, as the first of ``servers`` that
    answers sees it (None while none does, or the partition has no leader)."""
    for server in servers:
        try:
            admin = KafkaAdminClient(bootstrap_servers=[server], request_timeout_ms=3000)
        except KafkaError:
            continue
        try:
            for described in admin.describe_topics([topic]):
                for partition in described.get("partitions") or ():
                    if partition["partition_index"] == 0 and partition["leader_id"] >= 0:
                        return int(partition["leader_id"])
            return None
        except KafkaError:
            continue
        finally:
            admin.close()
    return None


def check(figures: Figures) -> None:
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < 10.0, figures
    assert figures.ran_after > 0, figures  # the fault landed before the drain ended


def test_killing_the_partition_leader(kafka_cluster: str, tmp_path: Path) -> None:
    figures = Figures("kafka 3 brokers, rf 3", "kill the partition leader")

    def fault(queue: str) -> float:
        leader = leader_of(queue, SERVERS)
        assert leader is not None, f"{queue} has no leader"
        services("kill", "kafka", str(leader))
        alive = [s for s in SERVERS if not s.endswith(f":{19290 + leader}")]

        def led_elsewhere() -> bool:
            now = leader_of(queue, alive)
            return now is not None and now != leader

        eventually(led_elsewhere, 60, f"a new leader after broker {leader} died", interval=0.2)
        return time.time()

    # The killed broker is not started again: the fixture removes the whole cluster next (a
    # restart that waits for three brokers took up to 70 s on a loaded machine).
    drain_with_fault(tmp_path, figures, kafka_cluster, kafka_cluster, OPTIONS, fault)
    check(figures)
