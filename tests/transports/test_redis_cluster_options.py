"""``redis+cluster://`` URLs and the hash tags that keep each queue in one slot (no servers:
the contract and the failover run on a real cluster from tests/clusters/test_redis_cluster.py)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from celeriac.transports import BrokerUnavailable, TransportError, resolve
from celeriac.transports.redis.cluster import RedisClusterTransport, cluster_nodes, slot_tag


def test_nodes_credentials_and_tls_come_from_the_url() -> None:
    tls, nodes, creds, query = cluster_nodes(
        "rediss+cluster://u:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/0?socket_timeout=3"
    )
    assert tls is True
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    assert creds == {"username": "u", "password": "s@cret"}
    assert query == "socket_timeout=3"
    assert resolve("redis+cluster://h:1/") is RedisClusterTransport


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://h:1/3", "database 0 only"),
        ("redis+cluster://h:x/", "bad node 'h:x'"),
        ("redis+cluster:///", "names no node"),
        ("redis://h:1/", "is not a redis\\+cluster:// URL"),
    ],
)
def test_bad_urls_are_refused_naming_the_fault(url: str, says: str) -> None:
    with pytest.raises(TransportError, match=says):
        cluster_nodes(url)


def test_publish_window_and_unknown_options_are_refused() -> None:
    with pytest.raises(TransportError, match="publish_window"):
        RedisClusterTransport("redis+cluster://h:1/", publish_window=10)
    with pytest.raises(TransportError, match="did you mean 'visibility_timeout'"):
        RedisClusterTransport("redis+cluster://h:1/", visibility_timout=10)


def test_every_key_of_a_queue_and_its_dead_letter_queue_shares_one_slot() -> None:
    transport = RedisClusterTransport("redis+cluster://h:1/", global_keyprefix="p:")
    assert slot_tag("jobs.dlq.dlq") == slot_tag("jobs.dlq") == "jobs"
    k = transport.keys_for("jobs")
    assert transport.keys_for("jobs.dlq") is k
    names = [
        *k.ready_lists("jobs"),
        *k.ready_lists("jobs.dlq"),
        k.delayed("jobs"),
        k.unacked,
        k.unacked_index,
        k.unacked_mutex,
        k.raw,
        k.raw_seq,
        k.consumers,
        k.owners,
        k.held("c1"),
    ]
    assert all(n.startswith("p:{jobs}") for n in names), names
    assert {key_slot(n.encode()) for n in names} == {key_slot(b"jobs")}
    assert key_slot(transport.keys_for("other").unacked.encode()) == key_slot(b"other")


def test_braces_in_a_queue_name_are_refused() -> None:
    transport = RedisClusterTransport("redis+cluster://h:1/")
    with pytest.raises(TransportError, match="no '\\{' or '\\}'"):
        transport.keys_for("a{b}")


def test_no_node_answering_names_them_and_hides_the_password() -> None:
    url = "redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2/"
    with pytest.raises(BrokerUnavailable) as info:
        RedisClusterTransport(url).connect()
    assert "127.0.0.1:1,127.0.0.1:2" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_the_workers_broker_info_reads_a_node_list() -> None:
    """``inspect stats`` shows the first node, never the password, and does not crash on the
    comma-separated node list (urllib cannot read its port)."""
    from celeriac.worker.remote import _broker_info

    info = _broker_info("rediss+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001/")
    assert (info["hostname"], info["port"], info["ssl"]) == ("10.0.0.1", 7000, True)
    assert "s3cret" not in repr(info)


def test_the_result_backend_takes_the_apps_options_and_names_what_it_refuses() -> None:
    """``App.backend`` opens every backend with ``expires`` and ``serializer``: taken (the
    next fault is the missing cluster), and an unknown option is refused by name."""
    from celeriac.backends import open_backend

    url = "redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2/"
    with pytest.raises(BrokerUnavailable) as info:
        open_backend(url, expires=60.0, serializer="json")
    assert "127.0.0.1:1,127.0.0.1:2" in str(info.value)
    assert "s3cret" not in str(info.value)
    with pytest.raises(TransportError, match="option\\(s\\): colour; it takes expires"):
        open_backend(url, expires=60.0, serializer="json", colour="red")
