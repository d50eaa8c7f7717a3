"""ZooKeeper authentication (digest or SASL), creator-only ACLs and TLS settings."""

from __future__ import annotations

import threading
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NotEmptyError

from celeriac import App
from celeriac.contrib.testing.worker import start_worker
from celeriac.protocol import WireMessage
from celeriac.transports import BrokerUnavailable, QueueSpec, TransportError, open_transport
from celeriac.transports.zookeeper.client import hosts_of, security_kwargs
from celeriac.transports.zookeeper.options import parse_options
from tests.brokers import ZOOKEEPER_URL, require
from tests.waiting import eventually


def kwargs(url: str, **options: object) -> dict[str, object]:
    return security_kwargs(url, parse_options(url, options))


def test_a_url_user_is_digest_auth_unless_sasl_is_asked_for() -> None:
    assert kwargs("zookeeper://h:2181/x") == {}
    assert kwargs("zookeeper://al:p%40ss@h/x") == {"auth_data": [("digest", "al:p@ss")]}
    sasl = kwargs("zookeeper://al:pw@h/x", sasl_mechanism="DIGEST-MD5")
    assert sasl == {"sasl_options": {"mechanism": "DIGEST-MD5", "username": "al", "password": "pw"}}


def test_tls_settings_reach_kazoo() -> None:
    got = kwargs("zookeeper://h:2281/x", use_ssl="true", ca="/ca.pem", check_hostname=False)
    assert got == {"use_ssl": True, "verify_certs": True, "check_hostname": False, "ca": "/ca.pem"}


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(TransportError, match="need use_ssl=true"):
        parse_options("zookeeper://h/x", {"ca": "/ca.pem"})
    with pytest.raises(TransportError, match="sasl_mechanism='GSSAPI'"):
        parse_options("zookeeper://h/x", {"sasl_mechanism": "GSSAPI"})
    with pytest.raises(TransportError, match="need a user and password in the URL"):
        kwargs("zookeeper://h/x", creator_acl=True)
    with pytest.raises(TransportError, match="use_ssl='maybe'"):
        parse_options("zookeeper://h/x", {"use_ssl": "maybe"})


def test_creator_acl_keeps_other_clients_out() -> None:
    require("zookeeper")
    base = f"/t20-acl-{uuid.uuid4().hex[:8]}"
    host = ZOOKEEPER_URL.split("://", 1)[1]
    url = f"zookeeper://celeriac:s3cret@{host}{base}"
    t = open_transport(url, creator_acl=True)
    stranger = KazooClient(hosts=hosts_of(ZOOKEEPER_URL))
    stranger.start(timeout=10)
    try:
        t.declare_queue(QueueSpec("q"))
        t.publish("q", WireMessage(b"[[], {}, {}]", "application/json", "utf-8", {"id": "1"}, {}))
        assert t.queue_length("q") == 1
        with pytest.raises(NoAuthError):  # another client, without the password, reads nothing
            stranger.get_children(base)
    finally:
        stranger.stop()
        stranger.close()
        t.close()
        owner = KazooClient(
            hosts=hosts_of(ZOOKEEPER_URL), auth_data=[("digest", "celeriac:s3cret")]
        )
        owner.start(timeout=10)
        owner.delete(base, recursive=True)  # only the owner can: the ACL holds
        owner.stop()
        owner.close()


def test_a_worker_with_the_credentials_runs_a_task_and_others_are_refused() -> None:
    """Digest auth on the shared server: nodes under a base path of our own carry a creator-only
    ACL; a worker and client with the user and password run a task, a client without them (or
    with a wrong password) is refused at connect, naming the ACL."""
    require("zookeeper")
    base = f"/t20c-{uuid.uuid4().hex[:8]}"
    host = ZOOKEEPER_URL.split("://", 1)[1]
    url = f"zookeeper://celeriac:s3cret@{host}{base}"
    app = App("zk-digest", broker=url, broker_transport_options={"creator_acl": True})
    ran = threading.Event()

    @app.task(name="t20c.record")
    def record(x: int) -> None:
        if x == 7:
            ran.set()

    try:
        with start_worker(app, perform_ping_check=False):
            record.delay(7)
            assert ran.wait(30), "the task did not run with digest credentials"
        for stranger in (f"zookeeper://{host}{base}", f"zookeeper://celeriac:wrong@{host}{base}"):
            with pytest.raises(BrokerUnavailable, match=r"not allowed to read .*NoAuthError"):
                open_transport(stranger).close()
    finally:
        owner = KazooClient(
            hosts=hosts_of(ZOOKEEPER_URL), auth_data=[("digest", "celeriac:s3cret")]
        )
        owner.start(timeout=10)

        def deleted() -> bool:
            # the stopped worker's ephemeral nodes go with its session, a moment later
            try:
                owner.delete(base, recursive=True)
            except NotEmptyError:
                return False
            return True

        eventually(deleted, 30, f"{base} deleted by its owner", interval=0.2)
        owner.stop()
        owner.close()


def test_creator_acl_under_sasl_names_the_sasl_identity() -> None:
    got = kwargs("zookeeper://al:pw@h/x", sasl_mechanism="DIGEST-MD5", creator_acl=True)
    (acl,) = got["default_acl"]  # type: ignore[misc]
    assert (acl.id.scheme, acl.id.id) == ("sasl", "al")
    (digest,) = kwargs("zookeeper://al:pw@h/x", creator_acl=True)["default_acl"]  # type: ignore[misc]
    assert digest.id.scheme == "digest" and digest.id.id.startswith("al:")
