"""Remote control under fuzzing: drawn control (pidbox) requests, broadcast on the memory
transport and on Redis, go through the real worker's control channel. Each is answered exactly
once when it is well-formed, meant for the worker and asks for a reply in our queue, and never
otherwise; the worker stays alive and answers a ping after each; a normal task runs at the end,
and the revoked set and the worker's memory stay bounded.

Budget: 15 % of ``CELERIAC_FUZZ_EXAMPLES`` on memory, 3 % (at least 10) on Redis (see
test_worker_fuzz.py).
"""

from __future__ import annotations

import resource
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from celeriac import App
from celeriac.control import control_message
from celeriac.protocol.control import (
    CONTROL_EXCHANGE,
    REPLY_EXCHANGE,
    ControlRequest,
    parse_control_request,
    reply_queue,
)
from celeriac.protocol.serializers import loads
from celeriac.transports import Consumer, Transport, open_transport
from celeriac.worker import Worker, run_worker, stop_worker
from tests.brokers import redis_db
from tests.fuzz.broadcast_strategies import Command, control_commands
from tests.fuzz.harness import RANDOM, budget


class Panel:
    """A worker, our reply queue, and the replies read from it by ticket."""

    def __init__(self, app: App, worker: Worker) -> None:
        self.app = app
        self.worker = worker
        self.transport: Transport = open_transport(app.conf.broker_url)
        self.key = uuid.uuid4().hex
        self.transport.declare_reply_queue(reply_queue(self.key), REPLY_EXCHANGE, self.key)
        self.replies: Consumer = self.transport.consumer([reply_queue(self.key)], prefetch=100)
        self.answers: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()

    def read(self, ticket: str, timeout: float = 10.0) -> None:
        """Read replies until ``ticket``'s has come (the worker answers in order)."""
        deadline = time.monotonic() + timeout
        while not self.answers[ticket] and time.monotonic() < deadline:
            got = self.replies.fetch(100, timeout=0.2)
            for delivery in got:
                assert delivery.message is not None, delivery.error
                self.answers[str(delivery.message.headers.get("ticket"))] += 1
            if got:
                self.replies.ack(got)
        assert self.answers[ticket] == 1, f"ping {ticket} answered {self.answers[ticket]} times"

    def close(self) -> None:
        self.replies.close()
        self.transport.close()


#: Redis database of this file's own: its broadcasts (pool sizes, consumers, revokes) reach no
#: other test's workers, and theirs none of ours.
REDIS_DB = 12


@pytest.fixture(params=["memory", "redis"])
def panel(request: pytest.FixtureRequest) -> Iterator[Panel]:
    name = f"fuzz-control-{uuid.uuid4().hex[:8]}"
    on_redis = request.param == "redis"
    broker = redis_db(REDIS_DB) if on_redis else f"memory://{name}"
    queue = f"fuzz.{uuid.uuid4().hex[:8]}"
    app = App("fuzz", broker=broker, backend=broker, task_default_queue=queue)
    app.examples = budget(0.03) if on_redis else budget(0.15)  # type: ignore[attr-defined]

    @app.task(name="fz.ok")
    def ok(*args: Any, **kwargs: Any) -> None:
        return None

    @app.task(name="fz.wake")
    def wake() -> None:
        """Ends an idle worker's wait for tasks, so it reads its control channel at once."""

    @app.task(name="fz.probe")
    def probe() -> str:
        return "alive"

    worker = run_worker(app, concurrency=2, hostname=f"fuzz-{uuid.uuid4().hex[:6]}@test")
    found = Panel(app, worker)
    yield found
    stop_worker(worker)
    found.close()
    app.close()


def _expected(command: Command, hostname: str, key: str) -> str | None:
    """The ticket the worker must answer in our queue (once), or None: it must not."""
    wire = command.wire
    try:
        request = parse_control_request(loads(wire.body, wire.content_type, wire.content_encoding))
        mine = request.is_for(hostname)
    except Exception:
        return None
    if not (mine and request.ticket and request.reply_to):
        return None
    return request.ticket if request.reply_to.get("routing_key") == key else None


def test_control_commands_through_the_worker(panel: Panel) -> None:
    worker, transport = panel.worker, panel.transport
    hostname = worker.hostname
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(
        max_examples=panel.app.examples,  # type: ignore[attr-defined]
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(command=control_commands(hostname, panel.key))
    def run(command: Command) -> None:
        expected = _expected(command, hostname, panel.key)
        before = panel.answers[expected] if expected else 0
        transport.broadcast(CONTROL_EXCHANGE, command.wire)
        ticket = uuid.uuid4().hex
        ping = ControlRequest(
            "ping",
            destination=(hostname,),
            ticket=ticket,
            reply_to={"exchange": REPLY_EXCHANGE, "routing_key": panel.key},
        )
        transport.broadcast(CONTROL_EXCHANGE, control_message(ping))
        panel.app.send_task("fz.wake")
        panel.read(ticket)  # handled in order: the command before it is done
        assert worker.thread.is_alive(), "the worker died"  # type: ignore[attr-defined]
        if expected:
            assert panel.answers[expected] - before == 1, f"{command.body} not answered once"
        panel.seen["answered" if expected else "silent"] += 1

    run()
    print(f"control fuzz: {dict(panel.seen)}")
    if sum(panel.seen.values()) >= 40:  # the strategy reaches both ends
        assert panel.seen["answered"] > 0 and panel.seen["silent"] > 0, panel.seen
    # Replies to tickets nobody expected (a reply_to elsewhere) never came here.
    assert panel.app.send_task("fz.probe").get(timeout=30) == "alive"
    assert len(worker.revoked) <= 50_000 and worker.concurrency <= 1_000
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    assert grown_mib < 300, f"peak memory grew by {grown_mib:.0f} MiB"
