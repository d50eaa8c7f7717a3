"""The fault suite (reduced size): every accepted task runs at least once on every transport,
whatever is done to its workers, its broker, the network, or the result backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers import REDIS_URL, require
from tests.transports.conftest import url_for

from . import scenarios
from .conftest import ROWS
from .scenarios import Row, Setup

pytestmark = pytest.mark.broker

#: Transports the suite runs on, and which scenarios apply (no broker process to restart or
#: network to cut for SQLite).
FAULTS: dict[str, tuple[str, ...]] = {
    "sqlite": ("sigkill", "backend-outage"),
    "redis": ("sigkill", "broker-restart", "network-cut", "backend-outage", "clock-jump"),
    "amqp": ("sigkill", "broker-restart", "network-cut", "backend-outage", "clock-jump"),
    # ElasticMQ keeps messages in memory only (scripts/services), so its restart loses them.
    "sqs": ("sigkill", "network-cut", "clock-jump"),
    # Kafka clients go to the broker's advertised address after the first contact, past any
    # proxy; Kafka's and ZooKeeper's delays are timed by the consumer's clock (SPEC.md §6.5, §6.6).
    "kafka": ("sigkill", "broker-restart"),
    "zookeeper": ("sigkill", "broker-restart", "network-cut"),
}
CASES = [pytest.param(t, s, id=f"{t}-{s}") for t, names in FAULTS.items() for s in names]


def _check(row: Row) -> None:
    ROWS.append(row)
    assert row.accepted > 0, row
    assert row.lost == 0 and not row.lost_ids, (
        f"{row.lost} accepted task(s) never ran, {row.note}: {row.lost_ids[:10]}"
    )


@pytest.mark.parametrize(("transport", "scenario"), CASES)
def test_no_accepted_task_is_lost(transport: str, scenario: str, tmp_path: Path) -> None:
    setup = Setup(transport, url_for(transport, tmp_path), tmp_path)
    if scenario == "sigkill":
        row = scenarios.sigkill_workers(setup, tasks=200, kills=4)
        assert row.recover_s > 0 or row.duplicated > 0, "the kills landed after all the work"
    elif scenario == "broker-restart":
        row = scenarios.broker_restart(setup, tasks=300)
    elif scenario == "network-cut":
        row = scenarios.network_cut(setup, tasks=200)
    elif scenario == "clock-jump":
        row = scenarios.clock_jump(setup, tasks=40)
        assert not row.lost_ids, row.note
    else:
        require("redis")
        backend = REDIS_URL.rsplit("/", 1)[0] + "/4"
        row = scenarios.backend_outage(setup, backend, tasks=100)
    _check(row)
