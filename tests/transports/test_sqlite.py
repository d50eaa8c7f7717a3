"""What the SQLite transport does beyond the shared contract: several processes on one file, the
table layout of SPEC.md §6.7, leases, claim order, leased broadcast subscribers, URLs."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.envelopes import json_envelope
from celeriac.transports import (
    REJECT_REASON_HEADER,
    BrokerUnavailable,
    Consumer,
    Delivery,
    QueueSpec,
    TransportError,
    open_transport,
)
from celeriac.transports.sqlite import SQLiteTransport, forksafe
from celeriac.transports.sqlite.consumer import _claim_sql
from celeriac.transports.sqlite.schema import DEFAULT_PATH
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

# A consumer process: acks what it gets, prints the numbers as JSON once idle for 1.5 s.
CONSUMER = """
import json, sys, time
from celeriac.protocol import decode_task
from celeriac.transports import open_transport
url, queue = sys.argv[1], sys.argv[2]
transport = open_transport(url, visibility_timeout=10)
seen, idle_since, deadline = [], time.monotonic(), time.monotonic() + 60
with transport.consumer([queue], prefetch=10) as consumer:
    while time.monotonic() - idle_since < 1.5 and time.monotonic() < deadline:
        batch = consumer.fetch(10, timeout=0.2)
        if batch:
            idle_since = time.monotonic()
            time.sleep(0.01)  # a little work, so the others get a turn
        seen += [decode_task(d.message).args[0] for d in batch]
        consumer.ack(batch)
print(json.dumps(seen))
"""

# A subscriber process: prints READY once subscribed, then what one broadcast carried.
SUBSCRIBER = """
import sys
from celeriac.protocol import decode_task
from celeriac.transports import open_transport
subscription = open_transport(sys.argv[1]).subscribe(sys.argv[2])
print("READY", flush=True)
got = subscription.get(timeout=15)
print(decode_task(got).args[0] if got is not None else "NOTHING", flush=True)
subscription.close()
"""


def wire(n: int, **options: object) -> WireMessage:
    return encode_task(new_task_message("sqlite.task", (n,), **options))  # type: ignore[arg-type]


def number(delivery: Delivery) -> int:
    assert delivery.message is not None, delivery.error
    value = decode_task(delivery.message).args[0]
    assert isinstance(value, int)
    return value


def spawn(*args: str) -> subprocess.Popen[str]:
    """A Python process of this repository, its output readable line by line."""
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=REPO, env=ENV
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The next line the process prints, or a note that none came in time (never blocks on)."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return line[0].strip() if line else f"<no line in {timeout} s>"


def fetch_until(consumer: Consumer, count: int, timeout: float = 5.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.fetch(count - len(got), timeout=0.2)
    return got


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "broker.db"


@pytest.fixture
def url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture
def transport(url: str) -> SQLiteTransport:
    t = open_transport(url)
    assert isinstance(t, SQLiteTransport)
    t.declare_queue(QueueSpec("q"))
    return t


def rows(db_path: Path, queue: str) -> list[sqlite3.Row]:
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM messages WHERE queue = ? ORDER BY id", (queue,)).fetchall()


def test_processes_sharing_a_queue_get_each_message_exactly_once(
    transport: SQLiteTransport, url: str
) -> None:
    transport.publish_many("q", [wire(i) for i in range(1500)])
    procs = [spawn("-c", CONSUMER, url, "q") for _ in range(3)]
    for i in range(1500, 2000):  # and more arrive while they consume
        transport.publish("q", wire(i))
    outputs = [proc.communicate(timeout=90)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    seen = [json.loads(out) for out in outputs]
    everything = [n for s in seen for n in s]
    assert len(everything) == len(set(everything)), "a message was delivered twice"
    assert sorted(everything) == list(range(2000)), "a message was lost"
    assert sum(1 for s in seen if s) >= 2  # they really shared the queue
    assert transport.queue_length("q") == 0


def test_a_killed_consumers_rows_wait_out_the_visibility_timeout(url: str) -> None:
    transport = open_transport(url, visibility_timeout=2)
    transport.declare_queue(QueueSpec("q"))
    transport.publish_many("q", [wire(i) for i in range(5)])
    proc = spawn(str(Path(__file__).with_name("consumer_proc.py")), url, "q", "5")
    try:
        assert read_line(proc) == "HOLDING 5"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with transport.consumer(["q"], prefetch=5) as consumer:
        # Its last renewal was at most 2/3 s ago, so its lease runs for another 1.3 s at least.
        assert consumer.fetch(5, timeout=0.8) == []
        got = fetch_until(consumer, 5, timeout=10)
        assert sorted(number(d) for d in got) == list(range(5))
        assert all(d.redelivered for d in got)
        consumer.ack(got)


def test_broadcast_reaches_a_subscriber_in_another_process(
    transport: SQLiteTransport, url: str
) -> None:
    proc = spawn("-c", SUBSCRIBER, url, "ex")
    try:
        assert read_line(proc) == "READY"
        transport.broadcast("ex", wire(42))
        assert read_line(proc) == "42"
    finally:
        proc.kill()
        proc.wait(10)


def test_subscribers_that_stop_renewing_are_dropped_with_their_inbox(
    transport: SQLiteTransport, db_path: Path
) -> None:
    live = transport.subscribe("ex")
    dead = transport.subscribe("ex")
    transport.broadcast("ex", wire(1))
    with sqlite3.connect(db_path) as db:  # as if its process had died 30 s ago
        db.execute("UPDATE subscribers SET lease_until = 0 WHERE id = ?", (dead.id,))  # type: ignore[attr-defined]
    transport.broadcast("ex", wire(2))
    with sqlite3.connect(db_path) as db:
        subscribers = [r[0] for r in db.execute("SELECT id FROM subscribers")]
        inboxes = {r[0] for r in db.execute("SELECT DISTINCT queue FROM messages")}
    assert subscribers == [live.id]  # type: ignore[attr-defined]
    assert inboxes == {f"celeriac.broadcast.{live.id}"}  # type: ignore[attr-defined]
    got = [live.get(timeout=2), live.get(timeout=2)]
    assert [decode_task(m).args[0] for m in got if m is not None] == [1, 2]
    live.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM subscribers").fetchone() == (0,)


def test_rows_follow_the_spec_layout_through_claim_requeue_reject_and_ack(
    transport: SQLiteTransport, db_path: Path
) -> None:
    before = time.time()
    transport.publish("q", wire(1, priority=42))
    transport.publish("q", wire(2), delay=60)
    (row, delayed) = rows(db_path, "q")
    assert row["priority"] == 9  # clamped to 0..9
    assert before <= row["available_at"] <= time.time()
    assert delayed["available_at"] >= before + 60
    wire_back, info = json_envelope.unpack_wire(row["payload"])  # §6.1 envelope bytes
    assert info.delivery_tag == row["delivery_tag"] and info.routing_key == "q"
    assert row["claimed_by"] is None and row["claimed_until"] is None
    with transport.consumer(["q"], prefetch=1) as consumer:
        (first,) = consumer.fetch(1, timeout=1)
        claimed = rows(db_path, "q")[0]
        assert claimed["claimed_by"] == consumer.id  # type: ignore[attr-defined]
        assert claimed["claimed_until"] >= time.time() + 59  # the 60 s default lease
        assert claimed["deliveries"] == 1
        consumer.requeue(first)
        assert rows(db_path, "q")[0]["claimed_by"] is None
        (again,) = consumer.fetch(1, timeout=1)
        assert again.redelivered and rows(db_path, "q")[0]["deliveries"] == 2
        consumer.reject(again, "unknown-task: sqlite.task")
    (dead,) = rows(db_path, "q.dlq")
    dead_wire, dead_info = json_envelope.unpack_wire(dead["payload"])
    assert dead_wire.headers[REJECT_REASON_HEADER] == "unknown-task: sqlite.task"
    assert dead_wire.body == wire_back.body
    assert dead_info.delivery_tag == dead["delivery_tag"] != row["delivery_tag"]
    assert (dead["claimed_by"], dead["deliveries"]) == (None, 0)
    with transport.consumer(["q.dlq"], prefetch=1) as consumer:
        (from_dlq,) = consumer.fetch(1, timeout=1)
        assert not from_dlq.redelivered
        consumer.ack([from_dlq])
    assert rows(db_path, "q.dlq") == []
    assert [r["id"] for r in rows(db_path, "q")] == [delayed["id"]]


def test_claims_go_by_priority_then_by_the_time_a_row_became_ready(
    transport: SQLiteTransport,
) -> None:
    transport.publish("q", wire(1), delay=0.3)
    transport.publish("q", wire(2))
    transport.publish("q", wire(3, priority=5), delay=0.3)
    eventually(lambda: transport.queue_length("q") >= 3, 5, "three rows ready")
    transport.publish("q", wire(4))
    with transport.consumer(["q"], prefetch=4) as consumer:
        got = fetch_until(consumer, 4)
        assert [number(d) for d in got] == [3, 2, 1, 4]
        consumer.ack(got)


def test_a_claim_seeks_an_index_and_never_scans_the_table(db_path: Path) -> None:
    # A scan would slow every claim down behind thousands of delayed or held rows.
    open_transport(f"sqlite:///{db_path}")
    with sqlite3.connect(db_path) as db:
        for queues in (1, 3):
            sql = _claim_sql(queues, "id, priority, available_at")
            params = {f"q{i}": "q" for i in range(queues)} | {"now": 0.0, "room": 10}
            plan = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
            touching = [step for step in plan if " messages" in step]
            assert touching and all("USING INDEX messages_next" in s for s in touching), plan


def test_an_idle_consumer_polls_without_waiting_for_the_write_lock(
    transport: SQLiteTransport, db_path: Path
) -> None:
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock meanwhile
    try:
        with transport.consumer(["q"], prefetch=1) as consumer:
            start = time.monotonic()
            assert consumer.fetch(1, timeout=0.3) == []
            assert time.monotonic() - start < 2.0
            assert transport.queue_length("q") == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_garbage_collected_consumer_gives_its_rows_back_at_once(
    transport: SQLiteTransport,
) -> None:
    transport.publish_many("q", [wire(1), wire(2)])
    consumer = transport.consumer(["q"], prefetch=2)
    assert len(consumer.fetch(2, timeout=1)) == 2
    assert transport.queue_length("q") == 0
    del consumer
    gc.collect()
    assert transport.queue_length("q") == 2


def test_urls_name_files_and_refuse_what_cannot_be_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite://", "sqlite:///"):
        default = open_transport(url)
        assert isinstance(default, SQLiteTransport)
        assert default.path == str(tmp_path / DEFAULT_PATH)
        default.close()
    relative = open_transport("sqlite:///sub.db")
    monkeypatch.chdir("/")  # the path was fixed when the transport was made
    relative.declare_queue(QueueSpec("q"))
    relative.publish("q", wire(1))
    assert (tmp_path / "sub.db").is_file() and relative.queue_length("q") == 1
    for bad, says in [
        ("sqlite:///:memory:", "cannot be shared"),
        ("sqlite:///x.db?timeout=3", "takes no query"),
        ("sqlite://host/x.db", "has no host"),
    ]:
        with pytest.raises(TransportError, match=says):
            open_transport(bad)


def test_a_file_that_is_not_a_database_is_reported_with_what_to_do(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an sqlite file, " * 100)
    with pytest.raises(BrokerUnavailable, match=r"junk\.db.*not an intact SQLite database"):
        open_transport(f"sqlite:///{junk}")


def test_a_consumer_used_after_close_says_so(transport: SQLiteTransport) -> None:
    consumer = transport.consumer(["q"])
    consumer.close()
    with pytest.raises(TransportError, match="after close"):
        consumer.fetch(1, timeout=0)


def test_a_fork_waits_for_the_sqlite_call_in_progress(tmp_path: Path) -> None:
    # A process forked while another thread is inside SQLite inherits its mutexes locked (its
    # first SQLite call then hangs): the fork must wait until the call is out.
    db = forksafe.connect(str(tmp_path / "fork.db"), check_same_thread=False)
    entered = threading.Event()
    times: dict[str, float] = {}

    def slow(x: int) -> int:
        entered.set()
        time.sleep(0.3)
        times["call done"] = time.monotonic()
        return x

    db.create_function("slow", 1, slow)
    caller = threading.Thread(target=lambda: db.execute("SELECT slow(1)").fetchall())
    caller.start()
    assert entered.wait(5)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    times["forked"] = time.monotonic()
    os.waitpid(pid, 0)
    caller.join(5)
    assert times["call done"] < times["forked"]
    assert db.execute("SELECT slow(2)").fetchall() == [(2,)]  # the gate is open again
    db.close()


def test_a_fork_waits_for_the_transaction_in_progress(tmp_path: Path) -> None:
    # A process forked while another thread's connection is between BEGIN and COMMIT inherits
    # SQLite's record of that lock: its own connections then wait for it until their busy
    # timeout (a prefork child hung 30 s on its first result). The fork waits for the COMMIT.
    path = str(tmp_path / "fork.db")
    db = forksafe.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    inside = threading.Event()
    times: dict[str, float] = {}

    def writer() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (1)")
        inside.set()
        time.sleep(0.3)  # the transaction stays open between calls
        times["committed"] = time.monotonic()
        db.execute("COMMIT")

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(5)
    pid = os.fork()
    if pid == 0:
        try:
            child = sqlite3.connect(path, timeout=2, isolation_level=None)
            child.execute("INSERT INTO t VALUES (2)")
        except BaseException:
            os._exit(1)
        os._exit(0)
    times["forked"] = time.monotonic()
    _, status = os.waitpid(pid, 0)
    thread.join(5)
    assert os.waitstatus_to_exitcode(status) == 0  # the child could write: no phantom lock
    assert times["committed"] < times["forked"]
    assert sorted(db.execute("SELECT x FROM t").fetchall()) == [(1,), (2,)]
    db.execute("INSERT INTO t VALUES (3)")  # the gate is open again: nothing waits
    db.close()


def test_rows_are_read_within_the_query_so_a_half_read_one_holds_nothing(tmp_path: Path) -> None:
    db = forksafe.connect(str(tmp_path / "rows.db"), isolation_level=None)
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    cursor = db.execute("SELECT x FROM t ORDER BY x")
    assert cursor.fetchone() == (0,)
    assert not db.in_transaction and not db._in_gate
    assert forksafe._GATE.inside == 0  # a fork now would not wait
    assert cursor.fetchmany(2) == [(1,), (2,)]
    assert list(cursor) == [(3,), (4,)]
    assert cursor.fetchone() is None and cursor.fetchall() == []
    db.close()
