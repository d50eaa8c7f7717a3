"""One pool of publishing connections per app and process, shared by threads calling ``delay()``
and asyncio callers awaiting ``adelay()``, bounded by ``broker_pool_limit``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from celeriac import App
from celeriac.app.producers import ProducerPool
from celeriac.transports import open_transport
from tests.brokers import AMQP_URL, REDIS_URL, require
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
THREADS = 50
CALLERS = 200
LIMIT = 4


def test_the_pool_never_opens_more_than_its_limit() -> None:
    opened: list[object] = []
    lock = threading.Lock()

    def opener() -> object:
        with lock:
            opened.append(object())
        return open_transport(f"memory://pool-{uuid.uuid4().hex}")

    pool = ProducerPool(opener, 3)  # type: ignore[arg-type]
    most = 0
    start = threading.Barrier(20)

    def use() -> None:
        nonlocal most
        start.wait()
        for _ in range(50):
            with pool.acquire():
                with lock:
                    most = max(most, len(pool))
                time.sleep(0)

    threads = [threading.Thread(target=use) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(opened) == 3  # every thread waited for one of the three
    assert most == 3
    pool.close()
    assert len(pool) == 0


def test_without_a_limit_each_use_opens_and_closes_a_connection() -> None:
    opened = []

    def opener() -> object:
        transport = open_transport(f"memory://pool-{uuid.uuid4().hex}")
        opened.append(transport)
        return transport

    pool = ProducerPool(opener, None)  # type: ignore[arg-type]
    for _ in range(3):
        with pool.acquire() as producer:
            assert producer.transport is opened[-1]
    assert len(opened) == 3
    assert len(pool) == 0


def test_a_pinned_producer_serves_its_thread_until_unpinned() -> None:
    pool = ProducerPool(lambda: open_transport(f"memory://p-{uuid.uuid4().hex}"), 2)
    pinned = pool.pin()
    with pool.acquire() as producer:
        assert producer is pinned
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(pool.pin()))
    t.start()
    t.join(5)
    assert other and other[0] is not pinned  # another thread gets the second one
    pool.unpin()
    with pool.acquire() as producer:
        assert producer is pinned  # given back, lent again


# -- on real brokers: connections counted by the broker ------------------------------------------


def _our_ports(remote_port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``remote_port``."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if int(remote.rsplit(":", 1)[1], 16) == remote_port and inode in inodes:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class Counter:
    """Counts this app's connections as the broker lists them."""

    def __init__(self, broker: str, client_name: str) -> None:
        self.broker, self.client_name = broker, client_name
        self.samples: list[int] = []
        # Connections this process had before the test (other tests' apps in the same run).
        self.before = _our_ports(5672) if broker == "amqp" else set()

    def sample(self) -> None:
        if self.broker == "redis":
            client = redis.Redis.from_url(REDIS_URL)
            try:
                listed = client.client_list()
            finally:
                client.close()
            self.samples.append(sum(1 for c in listed if c.get("name") == self.client_name))
        else:
            ctl = [str(REPO / "scripts/services"), "rabbitmqctl", "list_connections", "peer_port"]
            out = subprocess.run(ctl, check=True, capture_output=True, text=True, timeout=60)
            ports = {int(w) for w in out.stdout.split() if w.isdigit()}
            self.samples.append(len(ports & (_our_ports(5672) - self.before)))


@pytest.fixture(params=["redis", "amqp"])
def pooled(request: pytest.FixtureRequest) -> Iterator[tuple[App, Counter]]:
    broker = str(request.param)
    require("redis" if broker == "redis" else "rabbitmq")
    name = f"t22-{uuid.uuid4().hex[:8]}"
    options = {"client_name": name} if broker == "redis" else {}
    app = App("pool", broker=REDIS_URL if broker == "redis" else AMQP_URL, result_backend=None,
              task_default_queue=name, broker_pool_limit=LIMIT,
              broker_transport_options=options)  # fmt: skip
    try:
        yield app, Counter(broker, name)
    finally:
        with app.producers.acquire() as producer:
            producer.transport.purge(name)
        app.close()


def test_threads_and_asyncio_callers_publish_through_at_most_the_limit(
    pooled: tuple[App, Counter],
) -> None:
    app, counter = pooled
    stop = threading.Event()
    sent = {"threads": [0] * THREADS, "callers": [0] * CALLERS}
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        try:
            while not stop.is_set() or not sent["threads"][i]:
                app.send_task("t22.noop", (i,), ignore_result=True)
                sent["threads"][i] += 1
        except BaseException as exc:
            errors.append(exc)

    async def callers() -> None:
        async def one(i: int) -> None:
            while not stop.is_set() or not sent["callers"][i]:
                await app.asend_task("t22.noop", (i,), ignore_result=True)
                sent["callers"][i] += 1

        await asyncio.gather(*(one(i) for i in range(CALLERS)))

    def loop() -> None:
        try:
            asyncio.run(callers())
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=thread, args=(i,)) for i in range(THREADS)]
    workers.append(threading.Thread(target=loop))
    for w in workers:
        w.start()
    try:
        # Sampled while every thread and caller is publishing (each has sent at least once).
        eventually(
            lambda: all(sent["threads"]) and all(sent["callers"]),
            60,
            "every publisher started",
            detail=lambda: f"{sent}, {errors}",
        )
        while len(counter.samples) < (20 if counter.broker == "redis" else 3):
            counter.sample()
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert not errors, errors
    assert all(sent["threads"]) and all(sent["callers"])
    assert max(counter.samples) <= LIMIT, counter.samples
    assert max(counter.samples) >= 1, "the broker listed none of our connections"
    assert len(app.producers) <= LIMIT


def test_flush_waits_for_a_producer_lent_out() -> None:
    flushed: list[str] = []

    class Recording:
        def __init__(self) -> None:
            self.inner = open_transport(f"memory://f-{uuid.uuid4().hex}")

        def flush(self) -> None:
            flushed.append("flush")

        def close(self) -> None:
            self.inner.close()

    pool = ProducerPool(Recording, 1)  # type: ignore[arg-type]
    lent = threading.Event()
    release = threading.Event()

    def borrower() -> None:
        with pool.acquire():
            lent.set()
            release.wait(10)
            flushed.append("given back")

    t = threading.Thread(target=borrower)
    t.start()
    assert lent.wait(10)
    threading.Timer(0.2, release.set).start()
    pool.flush()  # the only producer is lent out: flushed once it comes back
    t.join(10)
    assert flushed == ["given back", "flush"]


def test_a_bounded_flush_gives_up_on_a_producer_still_lent_out() -> None:
    pool = ProducerPool(lambda: open_transport(f"memory://p-{uuid.uuid4().hex}"), 2)
    taken = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool.acquire():
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"stayed in use for 0\.2 s"):
            pool.flush(timeout=0.2)
        assert time.monotonic() - started < 5
        pool.sent = True
        with pytest.raises(TimeoutError):
            pool.flush_sent(timeout=0.2)
        assert not pool.sent  # seen: the next flush_sent waits only for newer publishes
    finally:
        release.set()
        holder.join(5)
    pool.flush(timeout=1)  # given back: nothing left to wait for
    pool.close()
