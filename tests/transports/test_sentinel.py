"""``sentinel://`` URLs as Kombu writes them, and the options that go with them (no servers:
the failovers are in tests/clusters/test_sentinel.py)."""

from __future__ import annotations

import pytest

from celeriac.transports import BrokerUnavailable, TransportError, open_transport, resolve
from celeriac.transports.redis import SentinelTransport
from celeriac.transports.redis.sentinel import sentinel_hosts

URL = "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://10.0.0.3"


def test_every_sentinel_and_the_masters_password_and_db_come_from_the_url() -> None:
    hosts, master = sentinel_hosts(URL)
    assert hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)]
    assert master == {"db": 2, "password": "s3cret"}
    assert resolve(URL) is SentinelTransport


def test_master_name_is_required() -> None:
    with pytest.raises(TransportError, match="needs the transport option master_name"):
        SentinelTransport(URL)


def test_redis_options_are_checked_and_sentinel_options_read() -> None:
    t = SentinelTransport(
        URL,
        master_name="mymaster",
        sentinel_kwargs={"password": "sentinel-pw"},
        visibility_timeout=30,
        socket_timeout="2.5",
    )
    assert t.settings.visibility_timeout == 30
    assert t.master_kwargs["db"] == 2 and t.keys.fanout_prefix == "/2."
    assert t._client_extra["socket_timeout"] == 2.5
    assert "s3cret" not in t.address and "mymaster" in t.address
    with pytest.raises(TransportError, match="unknown Redis transport option 'visiblity_timeout'"):
        SentinelTransport(URL, master_name="m", visiblity_timeout=30)
    with pytest.raises(TransportError, match="must share a transport"):
        SentinelTransport("sentinel://a;redis://b", master_name="m")


def test_no_sentinel_answering_names_them_all_and_no_password() -> None:
    url = "sentinel://:s3cret@127.0.0.1:5997;sentinel://127.0.0.1:5996"
    with pytest.raises(BrokerUnavailable) as err:
        open_transport(url, master_name="mymaster", socket_connect_timeout=1)
    text = str(err.value)
    assert "127.0.0.1:5997" in text and "127.0.0.1:5996" in text and "mymaster" in text
    assert "s3cret" not in text
