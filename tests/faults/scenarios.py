"""Fault scenarios: real worker processes on a real broker, a fault injected while they work, and
a ledger that shows afterwards whether every accepted task ran (and how many ran twice).

Each scenario returns a :class:`Row`; ``lost`` must be 0. Sizes are small for CI
(``python -m tests.faults --full`` runs them larger by hand).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from celeriac import App
from tests.waiting import eventually

from .proxy import CuttableProxy

REPO = Path(__file__).resolve().parents[2]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
SERVICE = {
    "redis": "redis",
    "amqp": "rabbitmq",
    "sqs": "sqs",
    "kafka": "kafka",
    "zookeeper": "zookeeper",
}


@dataclass
class Row:
    transport: str
    scenario: str
    accepted: int = 0
    ran: int = 0
    lost: int = 0
    duplicated: int = 0
    recover_s: float = 0.0
    faults: int = 0
    note: str = ""
    lost_ids: list[str] = field(default_factory=list)


@dataclass
class Setup:
    """Where a scenario runs: the broker URL workers use, the URL clients use, a work dir."""

    transport: str
    broker: str
    work: Path
    queue: str = field(default_factory=lambda: f"faults.{uuid.uuid4().hex[:8]}")
    transport_options: str = '{"visibility_timeout": 2}'

    @property
    def ledger(self) -> Path:
        return self.work / "ledger.db"

    def env(self, broker: str | None = None, backend: str = "") -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CELERIAC_BROKER_URL": broker or self.broker,
            "CELERIAC_RESULT_BACKEND": backend,
            "CELERIAC_TASK_DEFAULT_QUEUE": self.queue,
            "CELERIAC_BROKER_TRANSPORT_OPTIONS": self.transport_options,
            "FAULTS_LEDGER": str(self.ledger),
        }

    def client(self, broker: str | None = None) -> App:
        return App(
            "faults-client",
            broker=broker or self.broker,
            backend=None,
            task_default_queue=self.queue,
        )


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [CELERIAC, "worker", "-A", "tests.faults.app:app", "-c", "4", "-l", "warning"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def ran_ids(ledger: Path) -> list[str]:
    if not ledger.exists():
        return []
    with sqlite3.connect(ledger, timeout=60) as db:
        try:
            return [r[0] for r in db.execute("SELECT task_id FROM runs")]
        except sqlite3.OperationalError:
            return []  # no worker wrote yet


def wait_all_ran(ledger: Path, accepted: set[str], timeout: float) -> float:
    """Seconds until every accepted id is in the ledger (or ``timeout``: tally reports the rest)."""
    start = time.monotonic()
    try:
        eventually(lambda: accepted <= set(ran_ids(ledger)), timeout, "all ran", interval=0.2)
    except AssertionError:
        pass
    return time.monotonic() - start


def wait_some_ran(ledger: Path, timeout: float = 60) -> None:
    """Wait until workers ran something: they are up and consuming."""
    eventually(lambda: ran_ids(ledger), timeout, "a worker running a task")


def hold(seconds: float) -> None:
    """Keep a fault in place (or space sends out) for ``seconds``: the fault's shape, not a
    synchronisation."""
    threading.Event().wait(seconds)


def tally(row: Row, ledger: Path, accepted: set[str]) -> Row:
    runs = ran_ids(ledger)
    seen = set(runs)
    row.accepted = len(accepted)
    row.ran = len(accepted & seen)
    row.lost_ids = sorted(accepted - seen)
    row.lost = len(row.lost_ids)
    row.duplicated = len(runs) - len(seen)
    return row


@contextmanager
def workers(
    env: dict[str, str], log: Path, count: int = 2
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [start_worker(env, log) for _ in range(count)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def services(*args: str) -> None:
    subprocess.run(
        [str(REPO / "scripts/services"), *args],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )


def publish(app: App, count: int, pace: float = 0.0) -> tuple[set[str], int]:
    """Send ``count`` tasks; a send that raises is not accepted (the caller was told)."""
    accepted: set[str] = set()
    refused = 0
    for i in range(count):
        try:
            accepted.add(app.send_task("faults.record", (i,)).id)
        except Exception:  # the publisher was told: not accepted, not counted as lost
            refused += 1
            hold(0.2)  # the broker is away: back off before the next send
        if pace:
            hold(pace)
    return accepted, refused


# -- scenarios ---------------------------------------------------------------------------------
def sigkill_workers(setup: Setup, tasks: int, kills: int, timeout: float = 240) -> Row:
    """Workers killed with SIGKILL at random moments, again and again, with late acks."""
    row = Row(setup.transport, "sigkill")
    app = setup.client()
    try:
        accepted, _ = publish(app, tasks)
    finally:
        app.close()
    log = setup.work / "workers.log"
    env = setup.env()
    env["FAULTS_TASK_S"] = "0.3"  # long enough that kills land mid-task
    with workers(env, log) as procs:
        for k in range(kills):
            # Kill once a further share of the work is done, so each kill lands mid-run.
            share = (k + 1) * tasks // (kills + 2)
            eventually(lambda n=share: len(ran_ids(setup.ledger)) >= n, 120, f"{share} tasks run")
            victim = random.randrange(len(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            procs[victim] = start_worker(env, log)
            row.faults += 1
        row.recover_s = wait_all_ran(setup.ledger, accepted, timeout)
    row = tally(row, setup.ledger, accepted)
    if row.lost and setup.transport == "kafka":
        row.note = kafka_offsets(setup)
    return row


def kafka_offsets(setup: Setup) -> str:
    """Where a Kafka queue's group stands, partition by partition (for a loss's report)."""
    import kafka
    from kafka.structs import TopicPartition

    servers = urlsplit(setup.broker).netloc
    group = f"celeriac.{setup.queue}"
    admin = kafka.KafkaAdminClient(bootstrap_servers=servers)
    reader = kafka.KafkaConsumer(bootstrap_servers=servers)
    try:
        tps = [TopicPartition(setup.queue, p) for p in reader.partitions_for_topic(setup.queue)]
        ends = reader.end_offsets(tps)
        done = admin.list_group_offsets(group).get(group, {})
        return "; ".join(
            f"p{tp.partition}: end {ends[tp]}, committed "
            + (f"{done[tp].offset} (handed out {done[tp].metadata})" if tp in done else "none")
            for tp in sorted(tps)
        )
    finally:
        reader.close()
        admin.close()


def broker_restart(setup: Setup, tasks: int, timeout: float = 240) -> Row:
    """The broker stopped and started while tasks are published and consumed."""
    row = Row(setup.transport, "broker-restart")
    service = SERVICE[setup.transport]
    app = setup.client()
    result: dict[str, object] = {}

    def send() -> None:
        result["accepted"], result["refused"] = publish(app, tasks, pace=0.01)

    with workers(setup.env(), setup.work / "workers.log"):
        sender = threading.Thread(target=send)
        sender.start()
        wait_some_ran(setup.ledger)  # publishing and consuming are both under way
        services("down", service)  # the outage lasts as long as the broker takes to start again
        services("up", service)
        row.faults = 1
        sender.join(timeout)
        accepted = result.get("accepted", set())
        assert isinstance(accepted, set)
        row.note = f"{result.get('refused', 0)} sends refused while the broker was down"
        row.recover_s = wait_all_ran(setup.ledger, accepted, timeout)
    app.close()
    return tally(row, setup.ledger, accepted)


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def network_cut(setup: Setup, tasks: int, outage: float = 3.0, timeout: float = 240) -> Row:
    """The network between workers and broker cut, then restored, while they consume."""
    row = Row(setup.transport, "network-cut")
    port = urlsplit(setup.broker).port
    assert port is not None
    proxy = CuttableProxy(port)
    app = setup.client()
    try:
        with workers(setup.env(broker=_via(setup.broker, proxy.port)), setup.work / "w.log"):
            accepted, _ = publish(app, tasks // 2)
            wait_some_ran(setup.ledger)  # the workers are connected and consuming
            proxy.cut()
            more, _ = publish(app, tasks - tasks // 2)  # the client's own path is not cut
            hold(outage)
            proxy.restore()
            row.faults = 1
            accepted |= more
            row.recover_s = wait_all_ran(setup.ledger, accepted, timeout)
    finally:
        proxy.close()
        app.close()
    return tally(row, setup.ledger, accepted)


def backend_outage(
    setup: Setup, backend: str, tasks: int, outage: float = 3.0, timeout: float = 240
) -> Row:
    """The result backend cut off while tasks finish: tasks still run, none is lost."""
    row = Row(setup.transport, "backend-outage")
    port = urlsplit(backend).port
    assert port is not None
    proxy = CuttableProxy(port)
    app = setup.client()
    try:
        env = setup.env(backend=_via(backend, proxy.port))
        env["FAULTS_TASK_S"] = "0.1"
        with workers(env, setup.work / "w.log"):
            accepted, _ = publish(app, tasks)
            wait_some_ran(setup.ledger)  # results are being written
            proxy.cut()
            hold(outage)
            proxy.restore()
            row.faults = 1
            row.recover_s = wait_all_ran(setup.ledger, accepted, timeout)
    finally:
        proxy.close()
        app.close()
    return tally(row, setup.ledger, accepted)


def _libfaketime() -> str:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1")) or sorted(
        Path("/usr/lib").glob("**/libfaketimeMT.so.1")
    )
    if not found:
        raise RuntimeError("libfaketime is missing: apt-get install faketime (scripts/test does)")
    return str(found[0])


def clock_jump(setup: Setup, tasks: int, timeout: float = 120) -> Row:
    """The workers' wall clock jumps back an hour, then two hours forward, while half the tasks
    wait for their ETA in the broker: every task runs once due, none before it, none an hour late.
    (libfaketime moves the workers' clock only; brokers and the client keep the true time.)"""
    row = Row(setup.transport, "clock-jump")
    offset = setup.work / "faketime"
    offset.write_text("+0\n")
    env = setup.env()
    env.update(
        LD_PRELOAD=_libfaketime(),
        FAKETIME_TIMESTAMP_FILE=str(offset),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        FAULTS_TASK_S="0",
    )
    app = setup.client()
    due: dict[str, float] = {}
    try:
        with workers(env, setup.work / "w.log"):
            now = time.time()
            for i in range(tasks):
                countdown = 0.0 if i % 2 else 1.0 + (i % 5) * 0.5
                result = app.send_task("faults.record", (i,), countdown=countdown or None)
                due[result.id] = now + countdown
            offset.write_text("-60m\n")  # back an hour: ETAs look an hour away to the workers
            row.faults += 1
            seen: dict[str, float] = {}

            def all_seen() -> bool:
                for task_id in set(ran_ids(setup.ledger)) - seen.keys():
                    seen[task_id] = time.time()  # the true time the test saw it done
                return len(seen) == len(due)

            start = time.monotonic()
            # Every ETA comes due while the workers' clock is an hour behind: all must run.
            try:
                eventually(all_seen, timeout, "every task run", interval=0.1)
            except AssertionError:
                pass  # tally names the ones that never ran
            row.recover_s = time.monotonic() - start
            offset.write_text("+60m\n")  # then an hour ahead of the truth
            row.faults += 1
            after = app.send_task("faults.record", (tasks,))  # and the workers still work
            due[after.id] = time.time()
            try:
                eventually(all_seen, 30, "a task sent after the forward jump", interval=0.1)
            except AssertionError:
                pass
    finally:
        app.close()
    early = [t for t, at in seen.items() if at < due[t] - 0.5]
    row.note = f"{len(early)} ran before their ETA" if early else "none ran before its ETA"
    row = tally(row, setup.ledger, set(due))
    row.lost_ids += early  # running early is as wrong as not running
    return row
