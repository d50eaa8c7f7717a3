"""Beat leader election across hosts: two ``celeriac beat`` processes on two "hosts" (network
namespaces, tests/clusters/netns.py) share a Redis lock store on the bridge, one entry ticking
every second (``beat_catch_up="all"``), a worker on this machine recording each tick it runs.
The leader is killed, or its host cut off; the other beat must lead within the lease
(3 s + 1 s renew), and every tick must be sent exactly once: none twice, none missing, also
after the cut-off leader's host is back (fencing refuses what it was about to record)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis

from celeriac.beat import open_lock_store
from celeriac.beat.scheduler import owner_pid
from tests.waiting import eventually

from .conftest import FIGURES
from .drain import REPO, Figures
from .netns import Host, Network
from .test_netns_rabbitmq import network  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
APP = "tests.beat.apps.ticker:app"
REDIS_PORT = 16479
#: The lease (beat_lease_seconds) and renewal (beat_renew_seconds) the beats run with.
LEASE_S, RENEW_S = 3.0, 1.0
#: How long the leader's host stays cut off, and the beats run after it is back.
CUT_S, AFTER_S = 8.0, 4.0


@pytest.fixture(scope="module")
def shared_redis(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """A Redis of its own on the bridge (the shared one listens on loopback only)."""
    work = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [
            *("redis-server", "--bind", network.gateway, "--port", str(REDIS_PORT)),
            *("--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", str(work)),
        ],
        stdout=(work / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"redis://{network.gateway}:{REDIS_PORT}"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
        except redis.ConnectionError:
            return False  # not listening yet

    try:
        eventually(answers, 30, "the bridge Redis answering", 0.1)
        yield url
    finally:
        server.terminate()
        server.wait(30)


def ledger_ticks(path: Path) -> list[float]:
    """The scheduled ticks the worker ran, as Unix times."""
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [datetime.fromisoformat(row[0]).timestamp() for row in rows]


def run_two_beats(
    network: Network,  # noqa: F811
    redis_url: str,
    tmp_path: Path,
    figures: Figures,
    fault: Callable[[Host, subprocess.Popen[bytes]], Callable[[], None]],
) -> None:
    """Two beats on two hosts and a worker here; ``fault(leader's host, leader)`` once ticks
    flow, which returns what ends the fault (called once the other beat leads); then check
    that every tick ran once and the other beat led within the lease."""
    ledger = tmp_path / "ledger.txt"
    key = f"celeriac-beat-hosts:{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CELERIAC_BROKER_URL": f"{redis_url}/0",
        "CELERIAC_RESULT_BACKEND": f"{redis_url}/1",  # the lock store: the result backend
        "CELERIAC_TASK_DEFAULT_QUEUE": f"beat.{uuid.uuid4().hex[:8]}",
        "CELERIAC_BEAT_LOCK_KEY": key,
        "CELERIAC_BEAT_CATCH_UP": "all",
        "CELERIAC_BEAT_LEASE_SECONDS": str(LEASE_S),
        "CELERIAC_BEAT_RENEW_SECONDS": str(RENEW_S),
        "TICKER_LEDGER": str(ledger),
    }
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            )
        return procs[-1]

    hosts = [network.host(f"beat{uuid.uuid4().hex[:4]}") for _ in range(2)]
    store = open_lock_store(f"{redis_url}/1", key, LEASE_S)
    try:
        start("worker", [CELERIAC, "worker", "-A", APP, "-c", "2", "-l", "info"])
        beats = {
            h.name: start(f"beat-{h.name}", h.command([CELERIAC, "beat", "-A", APP, "-l", "info"]))
            for h in hosts
        }
        eventually(lambda: len(ledger_ticks(ledger)) >= 3, 60, "3 ticks run before the fault")
        leader = str(eventually(store.leader, 10, "a leader in the lock store"))
        host = next(h for h in hosts if beats[h.name].pid == owner_pid(leader))
        fault_at = time.time()
        end_fault = fault(host, beats[host.name])
        new_leader = str(
            eventually(
                lambda: (store.leader() or leader) != leader and store.leader(),
                30,
                "the other beat leads",
                0.05,
            )
        )
        figures.resume_s = time.time() - fault_at
        assert owner_pid(new_leader) == next(p.pid for n, p in beats.items() if n != host.name)
        end_fault()
        mended_at = time.time()
        eventually(
            lambda: max(ledger_ticks(ledger), default=0) >= mended_at + AFTER_S,
            60,
            f"ticks run {AFTER_S} s after the fault ended",
        )
        for proc in beats.values():  # all at once: none takes over from another's stop
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in beats.values():
            proc.wait(20)
        last = store.last_ticks()["tick"] / 1e6
        eventually(lambda: last in ledger_ticks(ledger), 30, "the worker ran the last tick sent")
    finally:
        store.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    ticks = ledger_ticks(ledger)
    counts = Counter(ticks)
    ordered = sorted(counts)
    missing = sum(round(b - a) - 1 for a, b in itertools.pairwise(ordered))
    figures.tasks = len(ordered)
    figures.lost = missing
    figures.duplicated = sum(n - 1 for n in counts.values())
    after = [t for t in ordered if t >= fault_at]
    figures.outage_s = max((b - a for a, b in itertools.pairwise([fault_at, *after])), default=0)
    figures.ran_after = len(after)
    FIGURES.append(figures)
    assert figures.duplicated == 0, f"ticks sent twice: {[t for t, n in counts.items() if n > 1]}"
    assert figures.lost == 0, f"ticks missing: {ordered}"
    assert ordered[-1] == last and ordered[0] < fault_at - 1
    # the lease runs out at most LEASE_S after the last renewal, the follower looks every
    # RENEW_S: the bound, with a second of slack for a loaded machine
    assert figures.resume_s < LEASE_S + RENEW_S + 1.0, figures


@pytest.fixture
def beat_figures() -> Figures:
    return Figures("beat x2 on 2 hosts, Redis lock", "", bound=0)


def test_killing_the_leading_beat(
    network: Network,  # noqa: F811
    shared_redis: str,
    tmp_path: Path,
    beat_figures: Figures,
) -> None:
    beat_figures.scenario = "kill the leader"

    def fault(host: Host, leader: subprocess.Popen[bytes]) -> Callable[[], None]:
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        return lambda: None

    run_two_beats(network, shared_redis, tmp_path, beat_figures, fault)


def test_cutting_the_leaders_host_off(
    network: Network,  # noqa: F811
    shared_redis: str,
    tmp_path: Path,
    beat_figures: Figures,
) -> None:
    beat_figures.scenario = f"leader's host cut off {CUT_S:.0f} s"

    def fault(host: Host, leader: subprocess.Popen[bytes]) -> Callable[[], None]:
        host.cut()
        cut_at = time.time()

        def mend() -> None:
            # the outage's length: a shape of the fault, not a sync
            threading.Event().wait(max(0.0, cut_at + CUT_S - time.time()))
            host.mend()
            assert leader.poll() is None  # cut off, it waits; it does not crash

        return mend

    run_two_beats(network, shared_redis, tmp_path, beat_figures, fault)
