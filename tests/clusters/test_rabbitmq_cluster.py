"""A 3-node RabbitMQ cluster with quorum queues: kill the worker's node, then the queue
leader, mid-drain; nothing is lost, only in-flight deliveries run twice, work resumes fast."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from tests.waiting import eventually

from .conftest import FIGURES, services
from .drain import Figures, drain_with_fault

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
QUORUM = {"queue_type": "quorum"}


def leader_of(queue: str, ask: int) -> int | None:
    """Which node (1..3) leads quorum queue ``queue``, as node ``ask`` sees it."""
    out = services("ctl", "rabbitmq", str(ask), "list_queues", "-q", "name", "leader")
    for line in out.splitlines():
        if line.split("\t")[0] == queue:
            found = re.search(r"c20n(\d)@", line)
            return int(found.group(1)) if found else None
    return None


def kill_and_wait_for_leader(queue: str, node: int, ask: int) -> float:
    """SIGKILL node ``node``, which must lead ``queue``; return once node ``ask`` reports
    another leader."""
    assert leader_of(queue, ask) == node, f"node {node} does not lead {queue}"
    services("kill", "rabbitmq", str(node))

    def led_elsewhere() -> bool:
        leader = leader_of(queue, ask)
        return leader is not None and leader != node

    eventually(led_elsewhere, 60, f"a new leader after node {node} died", interval=0.2)
    return time.time()


def restart(node: int) -> None:
    services("start", "rabbitmq", str(node))


def check(figures: Figures, resume_within: float = 10.0) -> None:
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < resume_within, figures
    assert figures.ran_after > 0, figures  # the fault landed before the drain ended


def test_killing_the_node_the_worker_is_on(rabbitmq_cluster: list[str], tmp_path: Path) -> None:
    n1, n2, n3 = rabbitmq_cluster
    # The client declares through node 1 (the queue's leader); the worker is on node 2.
    figures = Figures("rabbitmq 3 nodes, quorum", "kill the worker's node")

    def fault(queue: str) -> float:
        assert leader_of(queue, 1) == 1  # so the queue's leader is not the node killed here
        services("kill", "rabbitmq", "2")
        return time.time()  # the cluster (and the queue's leader, node 1) never went away

    try:
        drain_with_fault(tmp_path, figures, f"{n1};{n2};{n3}", f"{n2};{n3};{n1}", QUORUM, fault)
    finally:
        restart(2)
    check(figures)


def test_killing_the_queue_leader(rabbitmq_cluster: list[str], tmp_path: Path) -> None:
    n1, n2, n3 = rabbitmq_cluster
    figures = Figures("rabbitmq 3 nodes, quorum", "kill the queue leader")
    try:
        drain_with_fault(
            tmp_path,
            figures,
            f"{n1};{n2};{n3}",
            f"{n3};{n2};{n1}",
            QUORUM,
            lambda queue: kill_and_wait_for_leader(queue, 1, 3),
        )
    finally:
        restart(1)
    check(figures)


def test_a_classic_queue_whose_node_dies_is_consumed_again_once_it_is_back(
    rabbitmq_cluster: list[str], tmp_path: Path
) -> None:
    """A classic queue lives on one node. While that node is down the worker, on another node,
    gets basic.cancel and keeps trying to consume (it used to stall until restarted by hand).

    A SIGKILLed node forgets the acks of its classic queues that were not yet synced to disk,
    so tasks acked before the node is back can run again: the bound is what ran until then
    plus what was in flight (a quorum queue has no such window: see the tests above)."""
    n1, n2, n3 = rabbitmq_cluster
    figures = Figures("rabbitmq 3 nodes, classic", "queue's node down 3 s, then back")

    def fault(queue: str) -> float:
        services("kill", "rabbitmq", "1")  # the queue was declared there, by the client
        threading.Event().wait(3.0)  # the outage's length: a shape of the fault, not a sync
        restart(1)
        return time.time()

    drain_with_fault(tmp_path, figures, f"{n1};{n2};{n3}", f"{n2};{n3};{n1}", {}, fault)
    figures.bound += figures.extra["ran_before_back"]
    # The worker consumes again within _RECONSUME_PAUSE of the node's return; what follows is
    # RabbitMQ recovering the killed node's classic queue from disk (4.5-9 s on a loaded
    # 2-core machine), which no client can shorten: a quorum queue is the way to fail over
    # in under 10 s (the tests above).
    check(figures, resume_within=15.0)
