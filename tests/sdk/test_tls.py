"""rediss:// and amqps:// with a CA generated for the test: tasks round-trip over TLS when the
client trusts the CA, and the connection is refused with a clear error when it does not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celeriac import App
from celeriac.protocol import encode_task, new_task_message
from celeriac.transports import BrokerUnavailable, QueueSpec, open_transport
from celeriac.worker import run_worker, stop_worker
from tests.brokers import amqp_params, require, unique
from tests.tls import Certificates, TLSFront, make_certificates, start_tls_redis


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def rediss_url(certs: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, port = start_tls_redis(certs, tmp_path_factory.mktemp("redis-tls"))
    yield f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs.ca}&ssl_cert_reqs=required"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def amqps_url(certs: Certificates) -> Iterator[str]:
    require("rabbitmq")
    p = amqp_params()
    front = TLSFront(certs, p.port)
    yield f"amqps://{p.user}:{p.password}@127.0.0.1:{front.port}//?ca_certs={certs.ca}"
    front.close()


@pytest.fixture(params=["rediss", "amqps"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_transport_round_trip_over_tls(url: str) -> None:
    queue = unique("tls")
    sent = encode_task(new_task_message("tls.add", (1, 2), task_id="over-tls"))
    with open_transport(url) as transport:
        transport.declare_queue(QueueSpec(queue))
        transport.publish(queue, sent)
        with transport.consumer([queue], prefetch=1) as consumer:
            got = consumer.fetch(1, timeout=10)
            assert got and got[0].message is not None
            assert got[0].message.body == sent.body
            consumer.ack(got)


def test_tasks_and_results_over_tls(url: str, rediss_url: str) -> None:
    app = App("tls", broker=url, backend=rediss_url, task_default_queue=unique("tls-app"))

    @app.task(name="tls.add")
    def add(x: int, y: int) -> int:
        return x + y

    worker = run_worker(app, concurrency=2)
    try:
        assert app.send_task("tls.add", (20, 22)).get(timeout=30) == 42
    finally:
        stop_worker(worker)
        app.close()


def test_an_untrusted_certificate_is_refused(url: str, certs: Certificates) -> None:
    # Without our CA the client must not talk to the server, and must say why.
    untrusted = url.split("?", 1)[0]
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1") as info:
        open_transport(untrusted).connect()
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower()
