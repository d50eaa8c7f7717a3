"""A worker on another "host" (a network namespace, tests/clusters/netns.py) draining a 3-node
RabbitMQ cluster's quorum queue: cut the host off mid-drain and mend it, or freeze (SIGSTOP)
the node the worker is connected to. Nothing is lost, only in-flight deliveries run twice, and
the worker resumes within 10 s: of the host's reconnection, or of the node's freeze (it notices
through AMQP heartbeats and moves to another node)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import eventually

from .conftest import FIGURES, services
from .drain import Figures, drain_with_fault, runs
from .netns import Host, Network
from .test_rabbitmq_cluster import leader_of

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
#: Heartbeats every 2 s: a silent peer is noticed in a few seconds, on both sides.
OPTIONS = {"queue_type": "quorum", "heartbeat": 2}
USER = "c20b"
#: How long the host stays cut off: well under the transport's 30 s of reconnect attempts.
CUT_S = 6.0
#: Longest time from the freeze to the worker consuming through another node (the issue's
#: bound; about 5 s here: two heartbeats of silence, then until the others count it down).
FAILOVER_S = 10.0


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    net = Network()
    try:
        yield net
    finally:
        net.remove()


@pytest.fixture(scope="module")
def bridged_rabbitmq(network: Network) -> Iterator[tuple[list[str], list[str]]]:
    """A 3-node RabbitMQ cluster that also listens on the bridge; the loopback URLs (guest,
    for the client here) and the bridge URLs (a user of its own: guest is loopback-only)."""
    # A frozen node blocks queue and binding declarations cluster-wide until the others count
    # it down (net_ticktime, 60 s by default): 6 s, as docs/production.md advises (tasks do
    # not wait for it: 5.35 s to resume with 60 s too).
    extra = {"CELERIAC_CLUSTER_LISTEN": network.gateway, "CELERIAC_CLUSTER_NET_TICKTIME": "6"}
    os.environ.update(extra)
    try:
        services("up", "rabbitmq")
    finally:
        for name in extra:
            del os.environ[name]
    try:
        services("ctl", "rabbitmq", "1", "add_user", USER, USER)
        services("ctl", "rabbitmq", "1", "set_permissions", USER, ".*", ".*", ".*")
        local = [f"amqp://guest:guest@127.0.0.1:{5680 + n}//" for n in (1, 2, 3)]
        bridged = [f"amqp://{USER}:{USER}@{network.gateway}:{5680 + n}//" for n in (1, 2, 3)]
        yield local, bridged
    finally:
        services("down", "rabbitmq")


@pytest.fixture
def worker_host(network: Network) -> Iterator[Host]:
    host = network.host(f"w{len(network.hosts) + 1}")
    yield host
    host.mend()


def check(figures: Figures) -> None:
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.resume_s < 10.0, figures
    assert figures.ran_after > 0, figures  # the fault landed before the drain ended


def test_cutting_the_workers_host_off(
    bridged_rabbitmq: tuple[list[str], list[str]], worker_host: Host, tmp_path: Path
) -> None:
    (l1, l2, l3), (b1, b2, b3) = bridged_rabbitmq
    figures = Figures("rabbitmq 3 nodes, quorum", f"worker's host cut off {CUT_S:.0f} s")

    def fault(queue: str) -> float:
        worker_host.cut()
        threading.Event().wait(CUT_S)  # the outage's length: a shape of the fault, not a sync
        worker_host.mend()
        return time.time()

    drain_with_fault(
        tmp_path,
        figures,
        f"{l1};{l2};{l3}",
        f"{b2};{b3};{b1}",
        OPTIONS,
        fault,
        worker_prefix=worker_host.command([]),
    )
    check(figures)


def vm_pid(node: int) -> int:
    """The Erlang VM of cluster node ``node`` (what a SIGSTOP must reach)."""
    cache = Path(os.environ.get("CELERIAC_CACHE") or Path.home() / ".cache/celeriac")
    run = Path(os.environ.get("CELERIAC_RUN") or cache / "run")
    return int((run / f"clusters/rabbitmq/n{node}/rabbitmq-server.pid").read_text())


def test_freezing_the_workers_node(
    bridged_rabbitmq: tuple[list[str], list[str]], worker_host: Host, tmp_path: Path
) -> None:
    """SIGSTOP the node the worker uses (not the queue's leader): its TCP connections stay open
    but say nothing. The worker must notice through heartbeats and consume through another
    node while the node is still frozen. The node is thawed as soon as the worker works
    elsewhere (about 5 s), before the others count it down: it then takes the acks it was
    sent, and nothing runs twice (counted down, it would give its deliveries back to run
    again, as they did while failing over took 18 s).

    The transport counts a connection dead after two heartbeat intervals without a byte (4 s
    here; pika's own check took 7-14 s, and the worker's two connections, tasks and events,
    were noticed one after the other: 18 s in all). The cluster blocks queue declarations and
    bindings until it counts the frozen node down (net_ticktime, 6 s here); the worker's
    control subscription is set up again without waiting for them, so tasks flow meanwhile."""
    (l1, l2, l3), (b1, b2, b3) = bridged_rabbitmq
    figures = Figures("rabbitmq 3 nodes, quorum", "worker's node frozen (SIGSTOP)")
    ledger = tmp_path / "ledger.db"
    pid = vm_pid(2)

    def fault(queue: str) -> float:
        assert leader_of(queue, 1) == 1  # the frozen node 2 does not lead the queue
        before = len(runs(ledger))
        os.kill(pid, signal.SIGSTOP)
        frozen_at = time.time()
        try:
            # More ran than node 2 could have handed out before it froze: the worker moved on
            eventually(
                lambda: len(runs(ledger)) > before + 2 * figures.bound,
                60,
                "the worker consuming through another node",
                0.1,
            )
            figures.extra["failover_s"] = round(time.time() - frozen_at, 2)
        finally:
            os.kill(pid, signal.SIGCONT)
        return frozen_at  # the cluster kept its leader: resume is measured from the freeze

    try:
        drain_with_fault(
            tmp_path,
            figures,
            f"{l1};{l2};{l3}",
            f"{b2};{b3};{b1}",
            OPTIONS,
            fault,
            worker_prefix=worker_host.command([]),
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    figures.resume_s = figures.extra["failover_s"]  # (runs right after the freeze were prefetched)
    FIGURES.append(figures)
    assert figures.lost == 0, figures
    assert figures.duplicated <= figures.bound, figures
    assert figures.extra["failover_s"] < FAILOVER_S, figures
    assert figures.outage_s < FAILOVER_S, figures


def test_the_bridge_is_what_the_host_reaches(network: Network, worker_host: Host) -> None:
    """The isolation is real: the host's loopback is its own, so the shared brokers on the
    machine's 127.0.0.1 are out of its reach (it sees the cluster through the bridge only)."""
    probe = "import socket, sys; socket.create_connection((sys.argv[1], 5672), timeout=1)"
    seen = subprocess.run(
        worker_host.command(["python3", "-c", probe, "127.0.0.1"]), capture_output=True
    )
    assert seen.returncode != 0, "the shared RabbitMQ on 127.0.0.1 is reachable from the host"
