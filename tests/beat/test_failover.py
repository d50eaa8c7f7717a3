"""THE beat test: three ``celeriac beat`` processes, one schedule ticking every second, a worker
recording each tick it runs in a ledger; the leader is SIGKILLed mid-run and the others go on
for 8 s more. Every tick of the run must be sent exactly once: none twice, none missing
(``beat_catch_up="all"``), or with Celery's ``"latest"`` one send for the whole fail-over gap.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from celeriac.beat import open_lock_store
from celeriac.beat.scheduler import owner_pid
from tests.beat.test_stores import wait_for
from tests.brokers import REDIS_URL, ZOOKEEPER_URL, require

REPO = Path(__file__).resolve().parents[2]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
APP = "tests.beat.apps.ticker:app"
#: Seconds the beats keep going after the leader is killed.
AFTER_KILL = 8.0


def environment(kind: str, tmp_path: Path, catch_up: str) -> dict[str, str]:
    key = f"celeriac-beat-test:{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CELERIAC_TASK_DEFAULT_QUEUE": f"beat.{uuid.uuid4().hex[:8]}",
        "CELERIAC_BEAT_LOCK_KEY": key,
        "CELERIAC_BEAT_CATCH_UP": catch_up,
        "TICKER_LEDGER": str(tmp_path / "ledger.txt"),
    }
    if kind == "sqlite":  # the lock store defaults to the result backend's file
        env["CELERIAC_BROKER_URL"] = f"sqlite:///{tmp_path}/broker.db"
        env["CELERIAC_RESULT_BACKEND"] = f"sqlite:///{tmp_path}/results.db"
    elif kind == "redis":  # the lock store defaults to the result backend (Redis)
        require("redis")
        env["CELERIAC_BROKER_URL"] = REDIS_URL
        env["CELERIAC_RESULT_BACKEND"] = REDIS_URL
    else:
        require("zookeeper")
        env["CELERIAC_BROKER_URL"] = f"sqlite:///{tmp_path}/broker.db"
        env["CELERIAC_RESULT_BACKEND"] = f"sqlite:///{tmp_path}/results.db"
        env["CELERIAC_BEAT_LOCK_URL"] = f"{ZOOKEEPER_URL}/beat-test-{uuid.uuid4().hex[:8]}"
    return env


def lock_url(env: dict[str, str]) -> str:
    return env.get("CELERIAC_BEAT_LOCK_URL") or env["CELERIAC_RESULT_BACKEND"]


class Processes:
    """Child processes, their output in files; all are stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.all: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(
                [CELERIAC, *args, "-A", APP, "-l", "info"],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.all.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"process {proc.args!r} did not stop on SIGTERM") from None

    def kill_all(self) -> None:
        for proc in self.all:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Processes]]:
    made: list[Processes] = []

    def make(env: dict[str, str]) -> Processes:
        made.append(Processes(env, tmp_path))
        return made[-1]

    yield make
    for group in made:
        group.kill_all()


def ledger_ticks(path: Path) -> list[float]:
    """The scheduled ticks the worker ran, as Unix times, in the order run."""
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [datetime.fromisoformat(parts[0]).timestamp() for parts in lines]


@pytest.mark.broker
@pytest.mark.parametrize(
    ("kind", "catch_up"),
    [("sqlite", "all"), ("redis", "all"), ("zookeeper", "all"), ("sqlite", "latest")],
)
def test_three_beats_leader_killed_each_tick_sent_once(
    kind: str, catch_up: str, tmp_path: Path, processes: Callable[[dict[str, str]], Processes]
) -> None:
    env = environment(kind, tmp_path, catch_up)
    ledger = tmp_path / "ledger.txt"
    procs: Processes = processes(env)
    worker = procs.start("worker", "worker", "-c", "4")
    beats = [procs.start(f"beat{i}", "beat") for i in range(3)]
    store = open_lock_store(lock_url(env), env["CELERIAC_BEAT_LOCK_KEY"], 3.0)
    try:
        wait_for(lambda: len(ledger_ticks(ledger)) >= 3, 60, "3 ticks run before the kill")
        leader = wait_for(store.leader, 10, "a leader in the lock store")
        victim = next(p for p in beats if p.pid == owner_pid(leader))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = datetime.now().timestamp()
        new_leader = wait_for(
            lambda: (store.leader() or leader) != leader and store.leader(),
            30,
            "another beat leads after the kill",
        )
        took_over = datetime.now().timestamp() - killed_at
        assert owner_pid(new_leader) in {p.pid for p in beats if p is not victim}
        # Bounded fail-over: lease (3 s) + renew (1 s), plus slack; ZooKeeper: its session
        # timeout, which the server raises to at least twice its tickTime.
        assert took_over < (15.0 if kind == "zookeeper" else 6.0), took_over
        wait_for(
            lambda: max(ledger_ticks(ledger), default=0) >= killed_at + AFTER_KILL,
            60,
            f"ticks run up to {AFTER_KILL} s after the kill",
        )
        for proc in beats:
            if proc is not victim:
                procs.stop(proc)
        last = store.last_ticks()["tick"] / 1e6
        wait_for(lambda: last in ledger_ticks(ledger), 30, "the worker ran the last tick sent")
        procs.stop(worker)
    finally:
        store.close()
        procs.kill_all()

    ticks = ledger_ticks(ledger)
    twice = [t for t, n in Counter(ticks).items() if n > 1]
    assert not twice, f"ticks sent more than once: {twice}"
    ticks.sort()
    assert ticks[0] < killed_at - 1 and ticks[-1] == last
    holes = [(a, b) for a, b in itertools.pairwise(ticks) if b - a != 1.0]
    if catch_up == "all":
        assert holes == [], f"ticks missing between {holes}"
    else:  # Celery's way: the ticks missed during the fail-over are sent once, as the latest
        assert len(holes) == 1, f"expected one gap (the fail-over), got {holes}"
        assert killed_at - 2 <= holes[0][0] <= killed_at
    assert all(b - a == 1.0 for a, b in itertools.pairwise(ticks) if a > killed_at + 1)


@pytest.mark.broker
def test_worker_with_beat_sends_ticks_and_gives_the_lease_up_on_sigterm(
    tmp_path: Path, processes: Callable[[dict[str, str]], Processes]
) -> None:
    env = environment("redis", tmp_path, "latest")
    ledger = tmp_path / "ledger.txt"
    procs = processes(env)
    worker = procs.start("worker", "worker", "-c", "2", "--beat")
    store = open_lock_store(lock_url(env), env["CELERIAC_BEAT_LOCK_KEY"], 3.0)
    try:
        wait_for(lambda: len(ledger_ticks(ledger)) >= 3, 60, "3 ticks run by the worker")
        assert owner_pid(store.leader() or "beat-0@x") == worker.pid
        procs.stop(worker)
        assert worker.returncode == 0
        assert store.leader() is None  # given up at once, not left to expire
        last = store.last_ticks()["tick"] / 1e6
    finally:
        store.close()
    ticks = sorted(ledger_ticks(ledger))
    assert ticks[-1] <= last and len(set(ticks)) == len(ticks)
    assert all(b - a == 1.0 for a, b in itertools.pairwise(ticks))


@pytest.mark.broker
@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_a_paused_leader_that_wakes_after_losing_its_lease_sends_nothing_twice(
    kind: str, tmp_path: Path, processes: Callable[[dict[str, str]], Processes]
) -> None:
    """SIGSTOP the leader past its lease (a long GC pause, a frozen VM), let another beat lead,
    then SIGCONT it: fencing refuses whatever the stale leader was about to record."""
    env = environment(kind, tmp_path, "all")
    ledger = tmp_path / "ledger.txt"
    procs = processes(env)
    worker = procs.start("worker", "worker", "-c", "4")
    beats = [procs.start(f"beat{i}", "beat") for i in range(2)]
    store = open_lock_store(lock_url(env), env["CELERIAC_BEAT_LOCK_KEY"], 3.0)
    try:
        wait_for(lambda: len(ledger_ticks(ledger)) >= 2, 60, "2 ticks run before the pause")
        leader = wait_for(store.leader, 10, "a leader in the lock store")
        paused = next(p for p in beats if p.pid == owner_pid(leader))
        paused.send_signal(signal.SIGSTOP)
        wait_for(
            lambda: (store.leader() or leader) != leader, 30, "another beat leads in the pause"
        )
        resumed_at = datetime.now().timestamp()
        paused.send_signal(signal.SIGCONT)
        wait_for(
            lambda: max(ledger_ticks(ledger), default=0) >= resumed_at + 4,
            60,
            "ticks run 4 s after the stale leader woke",
        )
        assert paused.poll() is None  # it woke and follows; it did not crash
        for proc in beats:
            procs.stop(proc)
        last = store.last_ticks()["tick"] / 1e6
        wait_for(lambda: last in ledger_ticks(ledger), 30, "the worker ran the last tick sent")
        procs.stop(worker)
    finally:
        store.close()
        procs.kill_all()
    ticks = ledger_ticks(ledger)
    twice = [t for t, n in Counter(ticks).items() if n > 1]
    assert not twice, f"ticks sent more than once: {twice}"
    ticks.sort()
    holes = [(a, b) for a, b in itertools.pairwise(ticks) if b - a != 1.0]
    assert holes == [], f"ticks missing between {holes}"
    assert ticks[0] < resumed_at - 3 and ticks[-1] == last
