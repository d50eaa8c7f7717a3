"""``publish_window``: publishes that return once written, acknowledged later, on real brokers.

Nothing may be lost: not at a flush, not when the broker drops the connection with messages
written and unacknowledged (they are written again: at least once).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import redis

from celeriac.transports import Transport, TransportError, resolve
from tests.brokers import amqp_vhost

from .conftest import MakeTransport, new_queue, url_for
from .test_contract import REPO, drain, number, wire

WINDOWED = ("redis", "amqp")
#: The RabbitMQ virtual host of these tests: dropping its connections drops no one else's.
VHOST = "celeriac-window"


@pytest.fixture
def url(name: str, tmp_path: Path) -> str:
    return amqp_vhost(VHOST) if name == "amqp" else url_for(name, tmp_path)


@pytest.mark.parametrize("name", WINDOWED)
def test_windowed_publishes_all_arrive_in_order_after_flush(make_transport: MakeTransport) -> None:
    transport = make_transport(publish_window=100)
    queue = new_queue(transport)
    for n in range(1000):
        transport.publish(queue, wire(n))
    transport.flush()
    assert transport.queue_length(queue) == 1000
    assert [number(d) for d in drain(transport, queue, 1000)] == list(range(1000))


def _drop_connections(name: str, url: str) -> None:
    """The broker closes every client connection but the one asking."""
    if name == "redis":
        client = redis.Redis.from_url(url)
        assert client.client_kill_filter(_type="normal", skipme=True) >= 1
        client.close()
    else:
        services = str(REPO / "scripts/services")
        cmd = [services, "rabbitmqctl", "close_all_connections", "--vhost", VHOST, "dropped"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("name", WINDOWED)
def test_a_dropped_connection_loses_no_windowed_publish(
    name: str, url: str, make_transport: MakeTransport
) -> None:
    transport = make_transport(publish_window=10_000)  # nothing is acknowledged before the drop
    queue = new_queue(transport)
    for n in range(300):
        transport.publish(queue, wire(n))
    _drop_connections(name, url)
    for n in range(300, 600):
        transport.publish(queue, wire(n))
    transport.flush()
    fresh = make_transport()
    got = sorted(number(d) for d in drain(fresh, queue, 600))
    got += sorted(number(d) for d in drain(fresh, queue, 600, timeout=1.0))  # any duplicates
    assert set(got) == set(range(600))
    assert len(got) <= 900  # only what the drop left unacknowledged may come twice


@pytest.mark.parametrize("name", WINDOWED)
def test_close_waits_for_the_window(url: str, make_transport: MakeTransport) -> None:
    transport = resolve(url)(url, publish_window=10_000)
    queue = new_queue(transport)
    for n in range(500):
        transport.publish(queue, wire(n))
    transport.close()
    assert make_transport().queue_length(queue) == 500


@pytest.mark.parametrize("name", WINDOWED)
@pytest.mark.parametrize("bad", [-1, "many"])
def test_a_bad_window_is_refused_naming_the_option(url: str, bad: object) -> None:
    with pytest.raises(TransportError, match="publish_window"):
        resolve(url)(url, publish_window=bad)


def test_a_worker_s_own_publishes_each_wait_while_its_tasks_use_the_window() -> None:
    from celeriac import App
    from celeriac.worker import Worker

    app = App("w", broker="memory://window", broker_transport_options={"publish_window": 50})
    worker = Worker(app, pool="solo")
    # Tasks publish through the app's pool, windowed; the worker flushes it before their acks.
    assert app.conf.broker_transport_options == {"publish_window": 50}
    # The loop's transport (a requeued copy, then the original acked) waits for each publish.
    transport = worker._connect()
    try:
        assert transport.options["publish_window"] == 0
    finally:
        transport.close()


@pytest.mark.parametrize("name", ["amqp"])
def test_a_windowed_message_no_queue_takes_is_reported(make_transport: MakeTransport) -> None:
    transport = make_transport(publish_window=100)
    transport.publish(f"nowhere.{uuid.uuid4().hex}", wire(1))  # written; returned later
    with pytest.raises(TransportError, match="returned 1 earlier published message"):
        transport.flush()
    transport.flush()  # reported once


@pytest.mark.parametrize("name", ["amqp"])
def test_confirm_publish_is_kombu_s_name_for_a_window_of_zero(url: str) -> None:
    from celeriac.transports.amqp.options import CLIENT_WINDOW, parse_options

    assert parse_options({"confirm_publish": True}, {}).publish_window == 0
    assert parse_options({"confirm_publish": "false"}, {}).publish_window == CLIENT_WINDOW
    assert parse_options({"confirm_publish": False, "publish_window": 7}, {}).publish_window == 7
    with pytest.raises(TransportError, match="confirm_publish=True and publish_window=5"):
        parse_options({"confirm_publish": True, "publish_window": 5}, {})
    with pytest.raises(TransportError, match="confirm_publish"):
        parse_options({"confirm_publish": "often"}, {})


def test_the_default_transport_has_nothing_to_flush(make_transport: MakeTransport) -> None:
    transport: Transport = make_transport()
    transport.flush()
