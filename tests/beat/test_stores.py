"""Lock stores on real servers: one leader, fencing tokens that grow, and records refused to a
leader that lost its lease. Beat steps on the memory store: catch-up and fencing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.beat import ENTRY_HEADER, TICK_HEADER, Beat, open_lock_store
from celeriac.beat.store import FENCED, RECORDED, STALE, LockStore, ZooKeeperLockStore
from celeriac.config import ConfigError
from celeriac.protocol import decode_task
from tests.brokers import REDIS_URL, ZOOKEEPER_URL, require
from tests.waiting import eventually as wait_for

KINDS = ("memory", "sqlite", "redis", "zookeeper")
LEASE = 0.5


def url_of(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return f"memory://beat-{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/beat.db"
    if kind == "redis":
        require("redis")
        return REDIS_URL
    require("zookeeper")
    return f"{ZOOKEEPER_URL}/beat-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=KINDS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LockStore, ...]]:
    """Two handles on one store (as two beat processes would have)."""
    url = url_of(str(request.param), tmp_path)
    key = f"test-beat-{uuid.uuid4().hex[:8]}"
    opened = (open_lock_store(url, key, LEASE), open_lock_store(url, key, LEASE))
    yield opened
    if request.param == "redis":
        opened[0].client.delete(*opened[0].keys)  # type: ignore[attr-defined]
    for store in opened:
        store.close()


def lose_lease(a: LockStore, b: LockStore) -> None:
    """What a leader that stops renewing goes through: its lease ends."""
    if isinstance(a, ZooKeeperLockStore):
        assert a.node is not None
        b.client.delete(a.node)  # type: ignore[attr-defined]  # as its session expiring does
    wait_for(lambda: b.acquire("B") is not None, timeout=LEASE * 10, what="B takes the lease")


def test_one_leader_and_fencing(stores: tuple[LockStore, LockStore]) -> None:
    a, b = stores
    first = a.acquire("A")
    assert first is not None
    assert b.acquire("B") is None
    assert a.leader() == "A" and b.leader() == "A"
    assert a.acquire("A") == first  # renewing keeps the token
    assert a.record("A", first, "entry", 100) == RECORDED
    assert a.record("A", first, "entry", 100) == STALE  # never backwards, never twice
    assert b.record("B", first, "entry", 200) == FENCED  # not the lease holder
    assert b.last_ticks() == {"entry": 100}

    lose_lease(a, b)
    second = b.acquire("B")
    assert second is not None and second > first
    assert b.leader() == "B"
    assert a.acquire("A") is None
    assert a.record("A", first, "entry", 300) == FENCED  # the stale leader is refused
    assert b.record("B", second, "entry", 300) == RECORDED
    assert a.last_ticks() == {"entry": 300}

    b.release("B", second)
    third = wait_for(lambda: a.acquire("A"), timeout=5, what="A leads after B gave up")
    assert third > second
    assert b.record("B", second, "entry", 400) == FENCED


def test_unknown_lock_url_names_the_setting() -> None:
    with pytest.raises(RuntimeError, match=r"beat_lock_url 'amqp://x'.*redis://"):
        open_lock_store("amqp://x", "k")
    app = App("nolock", broker="amqp://guest@127.0.0.1//", backend="rpc://")
    with pytest.raises(ConfigError, match="set beat_lock_url"):
        _ = Beat(app).store


def test_bad_entries_are_refused_with_the_setting_named() -> None:
    app = App("badentry", broker="memory://b", beat_schedule={"x": {"task": "t", "every": 3}})
    with pytest.raises(ConfigError, match=r"beat_schedule\['x'\] has unknown key"):
        Beat(app)
    app = App("badentry", broker="memory://b", beat_catch_up="some")
    with pytest.raises(ConfigError, match="beat_catch_up"):
        Beat(app)


class Sent:
    """The ticks a beat sent, read back from the (memory) broker's queue."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.ticks: list[str] = []
        self.consumer: Any = None

    def __call__(self) -> list[str]:
        if self.consumer is None:
            self.app.declare(self.app.conf.task_default_queue)
            self.consumer = self.app.producer().consumer([self.app.conf.task_default_queue])
        deliveries = self.consumer.fetch(1000, timeout=0)
        for delivery in deliveries:
            message = decode_task(delivery.message)
            assert message.headers.extra[ENTRY_HEADER] == "every second"
            self.ticks.append(message.headers.extra[TICK_HEADER])
        self.consumer.ack(deliveries)
        return self.ticks


def beat_app(name: str, catch_up: str) -> tuple[App, Sent]:
    """An app on a memory broker with one entry, every second."""
    app = App(
        name,
        broker=f"memory://{name}-{uuid.uuid4().hex[:6]}",
        backend=f"memory://{name}",
        beat_lock_url=f"memory://{name}-{uuid.uuid4().hex[:6]}",
        beat_catch_up=catch_up,
    )

    @app.task(name="rec")
    def rec() -> None:
        """Never run here: the test reads the messages."""

    app.add_periodic_task(1.0, rec.s(), name="every second")
    return app, Sent(app)


@pytest.mark.parametrize("catch_up", ["latest", "all"])
def test_missed_ticks_are_sent_once_each_or_once_for_all(catch_up: str) -> None:
    app, seen = beat_app(f"catchup{catch_up}", catch_up)
    beat = Beat(app)
    start = datetime(2026, 1, 1, 12, 0, 0, 200_000, tzinfo=UTC)
    beat.step(now=start)  # the first look sets the baseline: nothing is due yet
    assert seen() == []
    beat.step(now=start + timedelta(seconds=1))
    assert seen() == ["2026-01-01T12:00:01+00:00"]
    beat.step(now=start + timedelta(seconds=5))  # 12:00:02 .. 12:00:05 fell due meanwhile
    missed = [f"2026-01-01T12:00:0{s}+00:00" for s in range(2, 6)]
    assert seen()[1:] == (missed if catch_up == "all" else missed[-1:])
    beat.step(now=start + timedelta(seconds=5))  # nothing twice
    assert len(seen()) == (5 if catch_up == "all" else 2)


def test_a_beat_that_lost_its_lease_sends_nothing() -> None:
    app, seen = beat_app("fenced", "all")
    a, b = Beat(app, owner="A"), Beat(app, owner="B")
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    a.step(now=start)
    a.step(now=start + timedelta(seconds=1))
    assert a.token is not None and seen() == ["2026-01-01T12:00:01+00:00"]
    b.step(now=start + timedelta(seconds=2))
    assert b.token is None and len(seen()) == 1  # a follower sends nothing
    a.store.release("A", a.token)  # A's lease is gone (as if it had stopped renewing) ...
    b.step(now=start + timedelta(seconds=2))  # ... and B leads, sending 12:00:02 once
    assert b.token is not None and b.token > a.token
    assert a.store.record("A", a.token, "every second", 10**18) == FENCED
    a.step(now=start + timedelta(seconds=3))
    assert a.token is None
    assert seen() == ["2026-01-01T12:00:01+00:00", "2026-01-01T12:00:02+00:00"]
