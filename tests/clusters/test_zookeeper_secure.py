"""A ZooKeeper that takes TLS clients (``scripts/services cluster up zookeeper-secure``: its
certificate signed by a throw-away CA): a worker and a client run a task over TLS with the CA
verified and digest auth; a CA that did not sign the server's certificate is refused within
the connect timeout, naming the verification failure."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import App
from celeriac.contrib.testing.worker import start_worker
from celeriac.transports import BrokerUnavailable, open_transport

from .conftest import services

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
TLS = "127.0.0.1:2192"


@pytest.fixture(scope="module")
def tls() -> Iterator[Path]:
    """The TLS ZooKeeper; the directory of its CA (ca.pem) and of a stranger CA."""
    services("up", "zookeeper-secure")
    cache = Path(os.environ.get("CELERIAC_CACHE", Path.home() / ".cache/celeriac"))
    run = Path(os.environ.get("CELERIAC_RUN", cache / "run"))
    try:
        yield run / "clusters/zksec/tls"
    finally:
        services("down", "zookeeper-secure")


def test_a_task_runs_over_tls_with_digest_auth(tls: Path) -> None:
    base = f"/t20c-{uuid.uuid4().hex[:8]}"
    app = App(
        "zk-tls",
        broker=f"zookeeper://celeriac:s3cret@{TLS}{base}",
        broker_transport_options={"use_ssl": True, "ca": str(tls / "ca.pem"), "creator_acl": True},
    )
    ran = threading.Event()

    @app.task(name="t20c.tls")
    def record(x: int) -> None:
        if x == 5:
            ran.set()

    with start_worker(app, perform_ping_check=False):
        record.delay(5)
        assert ran.wait(30), "the task did not run over TLS"


def test_an_untrusted_certificate_is_refused_clearly_and_soon(tls: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        open_transport(
            f"zookeeper://{TLS}/t20c-x",
            use_ssl=True,
            ca=str(tls / "stranger-ca.pem"),
            connect_timeout=3,
        ).close()
    took = time.monotonic() - t0
    assert took < 3 + 5, f"refused after {took:.1f}s, past the connect timeout"


SASL = "127.0.0.1:2191"


def test_a_task_runs_with_sasl_digest_md5_and_others_are_refused(tls: Path) -> None:
    """The server knows celeriac/s3cret (a JAAS DigestLoginModule): a worker and client log in
    with SASL DIGEST-MD5 and their nodes carry a sasl:celeriac ACL; a wrong password fails the
    login, and a client without credentials may not read the nodes."""
    base = f"/t20c-{uuid.uuid4().hex[:8]}"
    sasl = {"sasl_mechanism": "DIGEST-MD5"}
    app = App(
        "zk-sasl",
        broker=f"zookeeper://celeriac:s3cret@{SASL}{base}",
        broker_transport_options={**sasl, "creator_acl": True},
    )
    ran = threading.Event()

    @app.task(name="t20c.sasl")
    def record(x: int) -> None:
        if x == 9:
            ran.set()

    with start_worker(app, perform_ping_check=False):
        record.delay(9)
        assert ran.wait(30), "the task did not run with SASL DIGEST-MD5"
    with pytest.raises(BrokerUnavailable, match=r"authentication failed \(AuthFailedError\)"):
        open_transport(f"zookeeper://celeriac:wrong@{SASL}{base}", **sasl).close()
    with pytest.raises(BrokerUnavailable, match=r"not allowed to read .*NoAuthError"):
        open_transport(f"zookeeper://{SASL}{base}").close()
