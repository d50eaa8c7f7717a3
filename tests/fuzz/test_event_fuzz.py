"""Events under fuzzing: anyone on the broker can publish an event, so drawn events (known and
unknown types, fields of any type, numbers past every range, batches, bodies that are not
events) go into the dashboard's state and, on the wire, through a real dashboard's event
consumer. The state takes every one without raising, stays within its bounds, and every page
the dashboard serves can still be built and encoded; the consumer stays connected and still
sees a genuine event afterwards.

Budget: 30 % of ``CELERIAC_FUZZ_EXAMPLES`` for the state (batches of events) and 10 % of
it on the wire (see test_worker_fuzz.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeriac import App
from celeriac.dashboard import Dashboard, State
from celeriac.events import EVENT_EXCHANGE, event, send_event
from celeriac.protocol import WireMessage
from celeriac.transports import open_transport
from tests.fuzz.broadcast_strategies import event_messages, events
from tests.fuzz.harness import RANDOM, budget
from tests.waiting import eventually

LIMITS = {"max_tasks": 50, "max_workers": 20, "max_queues": 20}


def _settings(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _served(state: State) -> None:
    """Everything the dashboard's pages read from the state, encoded as the server does."""
    orjson.dumps(state.changes_since(0))
    orjson.dumps(state.find_tasks(search="t", limit=10))
    orjson.dumps(state.find_tasks(state="FAILURE", worker="w1@h"))
    orjson.dumps(state.series())
    for uuid_ in list(state.tasks)[:5]:
        orjson.dumps(state.task(uuid_))


def test_events_into_the_dashboard_state() -> None:
    state = State(**LIMITS)

    @_settings(budget(0.3))
    @given(batch=st.lists(events(), min_size=1, max_size=8))
    def run(batch: list[dict[str, Any]]) -> None:
        for found in batch:
            state.apply(found)  # never raises: events are anyone's
        assert len(state.tasks) <= LIMITS["max_tasks"]
        assert len(state.workers) <= LIMITS["max_workers"]
        assert len(state.queues) <= LIMITS["max_queues"]
        _served(state)

    run()
    # A genuine task's events still make a task record as before.
    state.apply(event("task-received", "w9@h", uuid="genuine", name="proj.add", args="(1,)"))
    state.apply(event("task-succeeded", "w9@h", uuid="genuine", result="2", runtime=0.1))
    genuine = state.task("genuine")
    assert genuine is not None and genuine["state"] == "SUCCESS" and genuine["result"] == "2"


@pytest.fixture
def board() -> Iterator[Dashboard]:
    name = f"fuzz-events-{uuid.uuid4().hex[:8]}"
    app = App("fuzz", broker=f"memory://{name}", backend="")
    dashboard = Dashboard(app, reply_timeout=0.2, max_tasks=LIMITS["max_tasks"])
    dashboard.start()
    eventually(lambda: dashboard.connected, 10, "the dashboard's event stream")
    yield dashboard
    dashboard.stop()
    app.close()


def test_event_messages_through_a_dashboard(board: Dashboard) -> None:
    transport = open_transport(board.app.conf.broker_url)
    seen = {"probes": 0}

    @_settings(budget(0.1))
    @given(messages=st.lists(event_messages(), min_size=1, max_size=4))
    def run(messages: list[WireMessage]) -> None:
        for message in messages:
            transport.broadcast(EVENT_EXCHANGE, message)
        probe = str(uuid.uuid4())
        send_event(board.app, event("task-received", "probe@h", uuid=probe, name="fz.probe"))
        eventually(lambda: board.state.task(probe), 10, "the probe event after the fuzzed ones")
        assert board.connected and board.error is None, board.error
        seen["probes"] += 1

    try:
        run()
    finally:
        transport.close()
    _served(board.state)
    assert seen["probes"] >= budget(0.1)
